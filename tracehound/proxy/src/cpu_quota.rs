//! Whether this process runs under a CPU bandwidth limit: a cgroup quota (v2 `cpu.max`,
//! v1 `cpu.cfs_quota_us`) on its own cgroup or an ancestor, as containers and systemd
//! units set. `tracehound proxy` busy-polls by default only without one: polling spends
//! a quota that the requests themselves need (see [`crate::host`]).
//!
//! Reads `/proc/self/mountinfo` (where each hierarchy is mounted, and from which cgroup)
//! and `/proc/self/cgroup` (which cgroup this process is in). Anything missing or
//! unreadable counts as no quota: this only picks a default.

use std::path::{Path, PathBuf};

/// The tightest CPU quota over this process's cgroup and its ancestors, in cores (1.5:
/// one and a half cores' worth of time per period), or `None` without one.
pub(crate) fn quota_cores() -> Option<f64> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    mounts(&mountinfo)
        .iter()
        .filter_map(|mount| {
            let path = cgroup_path(&cgroups, mount.version)?;
            quota_in(&mount.dir(path), &mount.point, mount.version)
        })
        .min_by(f64::total_cmp)
}

/// The cgroup hierarchy that carries CPU quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// The unified hierarchy (`cpu.max`).
    V2,
    /// The v1 `cpu` controller (`cpu.cfs_quota_us`, `cpu.cfs_period_us`).
    V1,
}

/// Where a hierarchy is mounted and which of its cgroups the mount shows at its top.
#[derive(Debug, PartialEq)]
struct Mount {
    version: Version,
    /// The cgroup path shown at `point` (`/` unless a container mounted a sub-tree).
    root: String,
    point: PathBuf,
}

impl Mount {
    /// The directory of cgroup `path` under this mount; the mount's top when the path is
    /// outside what the mount shows (a container whose mount shows only its own sub-tree
    /// while `/proc/self/cgroup` names a path outside it) or climbs with `..`.
    fn dir(&self, path: &str) -> PathBuf {
        if path.split('/').any(|part| part == "..") {
            return self.point.clone();
        }
        let relative = path.strip_prefix(self.root.trim_end_matches('/'));
        match relative {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                self.point.join(rest.trim_start_matches('/'))
            }
            _ => self.point.clone(),
        }
    }
}

/// The cgroup v2 and v1 `cpu` mounts listed in `/proc/self/mountinfo`.
fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let (root, point) = (*fields.get(3)?, *fields.get(4)?);
            let mut after = after.split(' ');
            let version = match after.next()? {
                "cgroup2" => Version::V2,
                "cgroup" if after.nth(1)?.split(',').any(|o| o == "cpu") => Version::V1,
                _ => return None,
            };
            Some(Mount {
                version,
                root: root.to_owned(),
                point: PathBuf::from(point),
            })
        })
        .collect()
}

/// This process's cgroup path in the hierarchy of `version`, from `/proc/self/cgroup`
/// (`0::/path` for v2, `N:cpu,cpuacct:/path` for v1).
fn cgroup_path(cgroups: &str, version: Version) -> Option<&str> {
    cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match version {
            Version::V2 => id == "0" && controllers.is_empty(),
            Version::V1 => controllers.split(',').any(|c| c == "cpu"),
        };
        matches.then_some(path)
    })
}

/// The tightest quota set on `dir` or any directory above it up to `top`.
fn quota_in(dir: &Path, top: &Path, version: Version) -> Option<f64> {
    dir.ancestors()
        .take_while(|d| d.starts_with(top))
        .filter_map(|d| match version {
            Version::V2 => v2_quota(&std::fs::read_to_string(d.join("cpu.max")).ok()?),
            Version::V1 => v1_quota(
                &std::fs::read_to_string(d.join("cpu.cfs_quota_us")).ok()?,
                &std::fs::read_to_string(d.join("cpu.cfs_period_us")).ok()?,
            ),
        })
        .min_by(f64::total_cmp)
}

/// A v2 `cpu.max` (`max 100000`: none; `150000 100000`: 1.5 cores).
fn v2_quota(cpu_max: &str) -> Option<f64> {
    let mut fields = cpu_max.split_whitespace();
    let quota = fields.next()?;
    let period = fields.next().unwrap_or("100000");
    cores(quota, period)
}

/// A v1 quota and period (`-1`: none).
fn v1_quota(quota: &str, period: &str) -> Option<f64> {
    cores(quota.trim(), period.trim())
}

fn cores(quota: &str, period: &str) -> Option<f64> {
    let quota: u64 = quota.parse().ok()?; // "max" and -1 do not parse: no quota
    let period: u64 = period.parse().ok().filter(|&p| p > 0)?;
    Some(quota as f64 / period as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 /kubepods/pod1 /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
36 23 0:33 / /proc rw - proc proc rw";

    #[test]
    fn finds_the_v2_and_v1_cpu_mounts_only() {
        let found = mounts(MOUNTINFO);
        let points: Vec<(&Path, Version, &str)> = found
            .iter()
            .map(|m| (m.point.as_path(), m.version, m.root.as_str()))
            .collect();
        assert_eq!(
            points,
            [
                (Path::new("/sys/fs/cgroup/cpu"), Version::V1, "/"),
                (
                    Path::new("/sys/fs/cgroup/cpu,cpuacct"),
                    Version::V1,
                    "/kubepods/pod1"
                ),
                (Path::new("/sys/fs/cgroup/unified"), Version::V2, "/"),
            ]
        );
        assert!(mounts("garbage\n\n1 2 3").is_empty());
    }

    #[test]
    fn reads_this_process_cgroup_per_hierarchy() {
        let cgroups = "9:name=systemd:/\n2:cpuacct:/\n1:cpu,cpuacct:/kubepods/pod1/c1\n0::/system.slice/x.service";
        assert_eq!(cgroup_path(cgroups, Version::V1), Some("/kubepods/pod1/c1"));
        assert_eq!(
            cgroup_path(cgroups, Version::V2),
            Some("/system.slice/x.service")
        );
        assert_eq!(cgroup_path("4:memory:/a", Version::V1), None);
    }

    #[test]
    fn places_a_cgroup_under_its_mount() {
        let mount = |root: &str| Mount {
            version: Version::V1,
            root: root.to_owned(),
            point: PathBuf::from("/m"),
        };
        assert_eq!(mount("/").dir("/a/b"), Path::new("/m/a/b"));
        assert_eq!(mount("/").dir("/"), Path::new("/m"));
        assert_eq!(mount("/a").dir("/a/b"), Path::new("/m/b"));
        assert_eq!(mount("/a").dir("/a"), Path::new("/m"));
        assert_eq!(
            mount("/a").dir("/ab"),
            Path::new("/m"),
            "not under the root"
        );
        assert_eq!(mount("/a").dir("/other"), Path::new("/m"));
        assert_eq!(
            mount("/").dir("/../etc"),
            Path::new("/m"),
            "no climbing out"
        );
    }

    #[test]
    fn parses_quotas_in_cores() {
        assert_eq!(v2_quota("max 100000\n"), None);
        assert_eq!(v2_quota("150000 100000\n"), Some(1.5));
        assert_eq!(v2_quota("50000"), Some(0.5), "period defaults to 100 ms");
        assert_eq!(v2_quota(""), None);
        assert_eq!(v2_quota("100 0"), None, "a zero period is no quota");
        assert_eq!(v1_quota("-1\n", "100000\n"), None);
        assert_eq!(v1_quota("200000\n", "100000\n"), Some(2.0));
        assert_eq!(v1_quota("x", "100000"), None);
    }

    #[test]
    fn finds_the_tightest_quota_up_to_the_mount() {
        let top = tempfile::tempdir().expect("tempdir");
        let leaf = top.path().join("pod/container");
        std::fs::create_dir_all(&leaf).expect("mkdir");
        std::fs::write(leaf.join("cpu.max"), "max 100000\n").expect("write");
        assert_eq!(quota_in(&leaf, top.path(), Version::V2), None);
        std::fs::write(top.path().join("pod/cpu.max"), "50000 100000\n").expect("write");
        assert_eq!(quota_in(&leaf, top.path(), Version::V2), Some(0.5));
        std::fs::write(leaf.join("cpu.max"), "25000 100000\n").expect("write");
        assert_eq!(quota_in(&leaf, top.path(), Version::V2), Some(0.25));
        // Above the mount point is not looked at.
        std::fs::write(leaf.join("cpu.max"), "max\n").expect("write");
        assert_eq!(quota_in(&leaf, top.path(), Version::V2), Some(0.5));
        assert_eq!(quota_in(&leaf, &leaf, Version::V2), None);
    }
}
