//! SecretiveX agent configuration: the TOML schema, profiles, precedence and validation.
//!
//! (Skeleton: filled in by the configuration work of issue 6.)
