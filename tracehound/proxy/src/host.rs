//! What `tracehound proxy` looks at on its host to choose busy polling's default: it pays
//! where waking an idle CPU is slow and CPU time is not rationed, which here means a
//! virtual machine whose kernel halts idle vCPUs at once, without a CPU quota.
//!
//! * **A virtual machine** (the CPU's `hypervisor` flag, or `/sys/hypervisor/type`): there
//!   each wake-up of a halted vCPU is a VM exit; measured in `docs/PERFORMANCE.md`. On bare
//!   metal the gain was never measured here, so the default stays off.
//! * **Guest halt polling** (the `haltpoll` cpuidle governor with a non-zero
//!   `guest_halt_poll_ns`): the guest kernel already polls before halting a vCPU, and the
//!   proxy's polling would add little but its cost.
//! * **A CPU quota** ([`crate::cpu_quota`]): polling would spend the quota the requests
//!   need.

use std::fmt;
use std::path::Path;

use crate::config::DEFAULT_BUSY_POLL;

/// The facts about this host that busy polling's default depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct HostFacts {
    /// A CPU quota on this process's cgroup or an ancestor, in cores.
    pub cpu_quota: Option<f64>,
    /// Running in a virtual machine.
    pub virtual_machine: bool,
    /// The guest kernel polls before halting an idle vCPU.
    pub guest_halt_polling: bool,
}

impl HostFacts {
    /// Reads them from `/proc` and `/sys`; anything unreadable counts as absent.
    pub fn probe() -> HostFacts {
        HostFacts {
            cpu_quota: crate::cpu_quota::quota_cores(),
            virtual_machine: virtual_machine(
                &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
                Path::new("/sys/hypervisor/type").exists(),
            ),
            guest_halt_polling: guest_halt_polling(
                // Older kernels publish only the read-only name.
                &std::fs::read_to_string("/sys/devices/system/cpu/cpuidle/current_governor")
                    .or_else(|_| {
                        std::fs::read_to_string(
                            "/sys/devices/system/cpu/cpuidle/current_governor_ro",
                        )
                    })
                    .unwrap_or_default(),
                &std::fs::read_to_string("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
                    .unwrap_or_default(),
            ),
        }
    }

    /// Busy polling's default on this host, and why.
    pub fn busy_poll_default(&self) -> BusyPollDefault {
        if let Some(cores) = self.cpu_quota {
            BusyPollDefault::CpuQuota(cores)
        } else if !self.virtual_machine {
            BusyPollDefault::NotVirtual
        } else if self.guest_halt_polling {
            BusyPollDefault::GuestHaltPolling
        } else {
            BusyPollDefault::On
        }
    }
}

/// Busy polling's default on a host ([`HostFacts::busy_poll_default`]); its `Display` is
/// what `tracehound proxy` prints at start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BusyPollDefault {
    /// On, up to [`DEFAULT_BUSY_POLL`]: a virtual machine whose guest kernel does not
    /// halt-poll, so an idle vCPU halts at once (unless the hypervisor keeps it from
    /// exiting, which this cannot see).
    On,
    /// Off: a CPU quota of this many cores applies.
    CpuQuota(f64),
    /// Off: not a virtual machine.
    NotVirtual,
    /// Off: the guest kernel already halt-polls.
    GuestHaltPolling,
}

impl BusyPollDefault {
    /// The polling maximum this default means (`None`: off).
    pub fn window(self) -> Option<std::time::Duration> {
        (self == BusyPollDefault::On).then_some(DEFAULT_BUSY_POLL)
    }
}

impl fmt::Display for BusyPollDefault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusyPollDefault::On => write!(
                f,
                "busy polling up to {} us (a VM without guest halt polling)",
                DEFAULT_BUSY_POLL.as_micros()
            ),
            BusyPollDefault::CpuQuota(cores) => {
                write!(f, "busy polling off (CPU quota of {cores:.2} cores)")
            }
            BusyPollDefault::NotVirtual => write!(f, "busy polling off (not a VM)"),
            BusyPollDefault::GuestHaltPolling => {
                write!(f, "busy polling off (the guest kernel halt-polls)")
            }
        }
    }
}

/// True when `/proc/cpuinfo` shows the `hypervisor` flag (x86), or a hypervisor type is
/// published (Xen).
fn virtual_machine(cpuinfo: &str, hypervisor_type: bool) -> bool {
    hypervisor_type
        || cpuinfo.lines().any(|line| {
            line.split_once(':').is_some_and(|(key, flags)| {
                key.trim() == "flags" && flags.split_whitespace().any(|f| f == "hypervisor")
            })
        })
}

/// True when the cpuidle governor is `haltpoll` and its poll limit is not zero.
fn guest_halt_polling(governor: &str, poll_ns: &str) -> bool {
    governor.trim() == "haltpoll" && poll_ns.trim().parse::<u64>().is_ok_and(|ns| ns > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_is_told_by_the_hypervisor_flag_or_type() {
        let vm = "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n";
        let metal = "processor\t: 0\nflags\t\t: fpu vme lahf_lm\nbugs\t\t: hypervisor_x\n";
        assert!(virtual_machine(vm, false));
        assert!(!virtual_machine(metal, false));
        assert!(virtual_machine(metal, true));
        assert!(!virtual_machine("", false));
    }

    #[test]
    fn guest_halt_polling_needs_the_governor_and_a_limit() {
        assert!(guest_halt_polling("haltpoll\n", "200000\n"));
        assert!(
            !guest_halt_polling("haltpoll\n", "0\n"),
            "this VM's setting"
        );
        assert!(!guest_halt_polling("menu\n", "200000\n"));
        assert!(!guest_halt_polling("", ""));
    }

    #[test]
    fn busy_polling_is_on_by_default_only_on_a_vm_without_halt_polling_or_quota() {
        let host = |cpu_quota, virtual_machine, guest_halt_polling| HostFacts {
            cpu_quota,
            virtual_machine,
            guest_halt_polling,
        };
        assert_eq!(
            host(None, true, false).busy_poll_default(),
            BusyPollDefault::On
        );
        assert_eq!(
            host(Some(1.5), true, false).busy_poll_default(),
            BusyPollDefault::CpuQuota(1.5)
        );
        assert_eq!(
            host(None, false, false).busy_poll_default(),
            BusyPollDefault::NotVirtual
        );
        assert_eq!(
            host(None, true, true).busy_poll_default(),
            BusyPollDefault::GuestHaltPolling
        );
        assert_eq!(BusyPollDefault::On.window(), Some(DEFAULT_BUSY_POLL));
        for off in [
            BusyPollDefault::CpuQuota(1.0),
            BusyPollDefault::NotVirtual,
            BusyPollDefault::GuestHaltPolling,
        ] {
            assert_eq!(off.window(), None, "{off}");
        }
        assert_eq!(
            BusyPollDefault::CpuQuota(1.5).to_string(),
            "busy polling off (CPU quota of 1.50 cores)"
        );
    }
}
