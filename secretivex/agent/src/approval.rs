//! Approval windows of `confirm` policy rules. (Skeleton: filled in by the policy work of
//! issue 6.)

/// Live approvals, by scope.
#[derive(Debug, Default)]
pub struct Approvals {}
