//! Benchmark helpers: latency summaries, peak RSS of a process, CPU accounting (the
//! machine's and each process's, from /proc), and realistic event bodies. The benchmarks are programs (see `src/bin/`), run by `scripts/bench-*.sh`;
//! they print figures next to a baseline measured in the same run.

pub mod fake_workos;

use std::{collections::HashMap, time::Duration};

/// p50/p99/max of a set of latencies.
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn summarize(mut v: Vec<Duration>) -> Summary {
    v.sort_unstable();
    let at = |q: f64| -> Duration {
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i.min(v.len() - 1)]
    };
    Summary {
        count: v.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: v.last().copied().unwrap_or_default(),
    }
}

/// Peak resident set size (VmHWM) of `pid` in KiB, from /proc.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmHWM:")
}

/// Resident set size now (VmRSS) of `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:")
}

/// A `… kB` line of /proc/<pid>/status.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

/// A `user.updated` webhook body for `user_id` with event id `id`, and its freshly
/// computed `WorkOS-Signature` header under `secret` (what the load generators send).
pub fn signed_update(id: &str, user_id: &str, secret: &str) -> (String, String) {
    let body =
        workos_sync_testkit::user_event(id, "user.updated", user_id, "2026-01-01T00:00:00.000Z");
    let sig = workos_sync_core::signature::signature_header(
        secret.as_bytes(),
        workos_sync_core::now_ms(),
        body.as_bytes(),
    );
    (body, sig)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One delivery of a generated history.
#[derive(Clone)]
pub struct Delivery {
    pub id: String,
    pub user: String,
    pub event_type: &'static str,
    /// `updated_at` as milliseconds after [`History::epoch`].
    pub version: i64,
    pub deleted: bool,
    pub body: Vec<u8>,
}

/// A generated event history: per user a create, updates and sometimes a delete; ~10%
/// of deliveries are duplicates; delivery order is shuffled.
pub struct History {
    pub deliveries: Vec<Delivery>,
    pub unique: usize,
    pub epoch: chrono::DateTime<chrono::Utc>,
}

impl History {
    /// user id → Some(newest version) or None (deleted), over every user delivery.
    pub fn model(&self) -> std::collections::HashMap<String, Option<i64>> {
        let mut m: std::collections::HashMap<String, Option<i64>> =
            std::collections::HashMap::new();
        let mut deleted = std::collections::HashSet::new();
        for d in self
            .deliveries
            .iter()
            .filter(|d| d.event_type.starts_with("user."))
        {
            if d.deleted {
                deleted.insert(d.user.clone());
            } else {
                let e = m.entry(d.user.clone()).or_insert(None);
                if e.is_none_or(|v| d.version > v) {
                    *e = Some(d.version);
                }
            }
        }
        for u in deleted {
            m.insert(u, None);
        }
        m
    }
}

pub fn generate_history(events: usize, users: usize, seed: u64) -> History {
    use rand::{Rng, SeedableRng, seq::SliceRandom};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let epoch = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let ts = |v: i64| {
        (epoch + chrono::Duration::milliseconds(v))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let unique_target = events * 10 / 11;
    let per_user = (unique_target / users.max(1)).max(1);
    let mut out = Vec::with_capacity(events);
    for u in 0..users {
        let user = format!("user_{u:06}");
        let deleted = rng.random_bool(0.1);
        let updates = if deleted {
            per_user.saturating_sub(1).max(1)
        } else {
            per_user
        };
        for v in 1..=updates {
            let event_type = if v == 1 {
                "user.created"
            } else {
                "user.updated"
            };
            let id = format!("event_{u:06}_{v:03}");
            let body = workos_sync_testkit::user_event(&id, event_type, &user, &ts(v as i64));
            out.push(Delivery {
                id,
                user: user.clone(),
                event_type,
                version: v as i64,
                deleted: false,
                body: body.into_bytes(),
            });
        }
        if deleted {
            let id = format!("event_{u:06}_del");
            let body =
                workos_sync_testkit::user_event(&id, "user.deleted", &user, &ts(updates as i64));
            out.push(Delivery {
                id,
                user: user.clone(),
                event_type: "user.deleted",
                version: updates as i64,
                deleted: true,
                body: body.into_bytes(),
            });
        }
    }
    let unique = out.len();
    let extra = events.saturating_sub(unique);
    for _ in 0..extra {
        let d = out[rng.random_range(0..unique)].clone();
        out.push(d);
    }
    out.shuffle(&mut rng);
    History {
        deliveries: out,
        unique,
        epoch,
    }
}

/// Adds organizations to `h` for a mixed drain: per organization a create and an
/// update, and `per_org` memberships of random users of the history, each created and
/// updated once; 10% of the added deliveries are duplicated; everything is reshuffled.
/// Returns the user of each membership (a deleted user's are removed with it).
pub fn add_organizations(
    h: &mut History,
    users: usize,
    orgs: usize,
    per_org: usize,
    seed: u64,
) -> Vec<String> {
    use rand::{Rng, SeedableRng, seq::SliceRandom};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ts = |v: i64| {
        (h.epoch + chrono::Duration::milliseconds(v))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut added = Vec::new();
    let mut pairs = std::collections::HashSet::new();
    for o in 0..orgs {
        let org = format!("org_{o:05}");
        for (v, ty) in [(1, "organization.created"), (2, "organization.updated")] {
            let id = format!("event_{org}_{v}");
            let body = serde_json::json!({"object": "event", "id": id, "event": ty, "created_at": ts(v),
                "data": {"object": "organization", "id": org, "name": format!("Org {o} v{v}"), "external_id": null,
                         "metadata": {}, "domains": [], "created_at": ts(0), "updated_at": ts(v)}});
            added.push(Delivery {
                id,
                user: String::new(),
                event_type: ty,
                version: v,
                deleted: false,
                body: body.to_string().into_bytes(),
            });
        }
        for k in 0..per_org {
            let user = format!("user_{:06}", rng.random_range(0..users.max(1)));
            if !pairs.insert((user.clone(), o)) {
                continue;
            }
            let om = format!("om_{o:05}_{k:04}");
            for (v, ty, status) in [
                (1, "organization_membership.created", "pending"),
                (2, "organization_membership.updated", "active"),
            ] {
                let id = format!("event_{om}_{v}");
                let body = serde_json::json!({"object": "event", "id": id, "event": ty, "created_at": ts(v),
                    "data": {"object": "organization_membership", "id": om, "user_id": user, "organization_id": org,
                             "status": status, "role": {"slug": "member"}, "roles": [{"slug": "member"}],
                             "created_at": ts(1), "updated_at": ts(v)}});
                added.push(Delivery {
                    id,
                    user: user.clone(),
                    event_type: ty,
                    version: v,
                    deleted: false,
                    body: body.to_string().into_bytes(),
                });
            }
        }
    }
    let unique = added.len();
    for _ in 0..unique / 10 {
        let d = added[rng.random_range(0..unique)].clone();
        added.push(d);
    }
    h.unique += unique;
    h.deliveries.extend(added);
    h.deliveries.shuffle(&mut rng);
    pairs.into_iter().map(|(u, _)| u).collect()
}

/// What a Directory Sync drain must leave in the tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryCounts {
    pub users: usize,
    pub groups: usize,
    pub memberships: usize,
}

/// Adds Directory Sync to `h` for a mixed drain: per directory a `dsync.activated`,
/// `users` directory users (created, then updated), `groups` groups (created), and
/// `members` `dsync.group.user_added` per group; 10% of the added deliveries are
/// duplicated; everything is reshuffled.
pub fn add_directories(
    h: &mut History,
    directories: usize,
    users: usize,
    groups: usize,
    members: usize,
    seed: u64,
) -> DirectoryCounts {
    use rand::{Rng, SeedableRng, seq::SliceRandom};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ts = |v: i64| {
        (h.epoch + chrono::Duration::milliseconds(v))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut added = Vec::new();
    let mut push = |id: String, ty: &'static str, v: i64, body: serde_json::Value| {
        added.push(Delivery {
            id,
            user: String::new(),
            event_type: ty,
            version: v,
            deleted: false,
            body: body.to_string().into_bytes(),
        });
    };
    let mut counts = DirectoryCounts::default();
    let mut pairs = std::collections::HashSet::new();
    for d in 0..directories {
        let dir = format!("directory_{d:04}");
        let id = format!("event_{dir}");
        push(
            id.clone(),
            "dsync.activated",
            1,
            serde_json::json!({"object": "event", "id": id,
            "event": "dsync.activated", "created_at": ts(1),
            "data": {"object": "directory", "id": dir, "organization_id": "org_1", "type": "okta scim v2.0",
                     "state": "active", "name": format!("Directory {d}"), "domains": [],
                     "created_at": ts(0), "updated_at": ts(1)}}),
        );
        let user = |u: usize, v: i64| {
            serde_json::json!({"object": "directory_user",
            "id": format!("directory_user_{d:04}_{u:05}"), "directory_id": dir, "organization_id": "org_1",
            "idp_id": format!("{u}"), "email": format!("u{u}@d{d}.example.com"), "first_name": "Ada",
            "last_name": format!("V{v}"), "state": "active", "raw_attributes": {"department": "eng"},
            "custom_attributes": {}, "role": {"slug": "member"}, "roles": [{"slug": "member"}],
            "created_at": ts(0), "updated_at": ts(v)})
        };
        for u in 0..users {
            for (v, ty) in [(1, "dsync.user.created"), (2, "dsync.user.updated")] {
                let id = format!("event_du_{d:04}_{u:05}_{v}");
                push(
                    id.clone(),
                    ty,
                    v,
                    serde_json::json!({"object": "event", "id": id, "event": ty,
                    "created_at": ts(v), "data": user(u, v)}),
                );
            }
        }
        counts.users += users;
        for g in 0..groups {
            let group = serde_json::json!({"object": "directory_group", "id": format!("directory_group_{d:04}_{g:03}"),
                "idp_id": format!("{g}"), "directory_id": dir, "organization_id": "org_1",
                "name": format!("Group {g}"), "raw_attributes": {}, "created_at": ts(0), "updated_at": ts(1)});
            let id = format!("event_dg_{d:04}_{g:03}");
            push(
                id.clone(),
                "dsync.group.created",
                1,
                serde_json::json!({"object": "event", "id": id,
                "event": "dsync.group.created", "created_at": ts(1), "data": group}),
            );
            counts.groups += 1;
            for k in 0..members {
                let u = rng.random_range(0..users.max(1));
                if !pairs.insert((d, g, u)) {
                    continue;
                }
                let id = format!("event_dm_{d:04}_{g:03}_{k:04}");
                push(
                    id.clone(),
                    "dsync.group.user_added",
                    3,
                    serde_json::json!({"object": "event", "id": id,
                    "event": "dsync.group.user_added", "created_at": ts(3),
                    "data": {"directory_id": dir, "user": user(u, 2), "group": group}}),
                );
                counts.memberships += 1;
            }
        }
    }
    let unique = added.len();
    for _ in 0..unique / 10 {
        let d = added[rng.random_range(0..unique)].clone();
        added.push(d);
    }
    h.unique += unique;
    h.deliveries.extend(added);
    h.deliveries.shuffle(&mut rng);
    counts
}

/// Machine-wide CPU time, from the first line of /proc/stat: lets a benchmark say how
/// much of the cores a phase used and what one message cost in CPU, summed over every
/// process (broker, database, the program under test, the load generator).
#[derive(Clone, Copy)]
pub struct CpuSample {
    busy: u64,
    total: u64,
}

impl CpuSample {
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest is included in user).
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        let total: u64 = fields.iter().take(8).sum();
        Some(Self {
            busy: total - idle,
            total,
        })
    }

    /// CPU use of the machine since `self`, per item processed meanwhile.
    pub fn since(self, items: usize) -> Option<CpuUse> {
        let now = Self::now()?;
        let total = now.total.checked_sub(self.total)?;
        let busy = now.busy.checked_sub(self.busy)?;
        if total == 0 || items == 0 {
            return None;
        }
        Some(CpuUse {
            share: busy as f64 / total as f64,
            us_per_item: us_per_item(busy, items),
        })
    }
}

/// How busy all cores were during a phase, and the CPU time (all processes) per item.
#[derive(Clone, Copy)]
pub struct CpuUse {
    /// Busy share of all cores, 0..=1.
    pub share: f64,
    pub us_per_item: f64,
}

impl CpuUse {
    /// Items per second the machine could do at `share` of its cores if each cost
    /// `us_per_item` of CPU.
    pub fn rate_at(us_per_item: f64, share: f64) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        share * cores as f64 * 1e6 / us_per_item
    }
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cores {:.0}% busy, {:.1} µs CPU per item",
            self.share * 100.0,
            self.us_per_item
        )
    }
}

/// " (cores 87% busy, 41.2 µs CPU per item)" for a benchmark line; empty without /proc.
pub fn cpu_note(cpu: Option<CpuUse>) -> String {
    cpu.map(|u| format!(" ({u})")).unwrap_or_default()
}

/// CPU time used so far by every process, from /proc/<pid>/stat: (command, user +
/// system ticks) by pid. The difference of two snapshots tells which program a phase's
/// CPU went to (processes started in between count from zero).
pub struct ProcCpu(HashMap<u32, (String, u64)>);

impl ProcCpu {
    pub fn now() -> Self {
        let mut by_pid = HashMap::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Self(by_pid);
        };
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // "pid (comm) state ppid ... utime stime": comm may hold spaces, so split
            // after its closing parenthesis; utime and stime are fields 14 and 15.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = stat[open + 1..close].to_string();
            let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let ticks = |i: usize| rest.get(i).and_then(|t| t.parse::<u64>().ok());
            if let (Some(u), Some(s)) = (ticks(11), ticks(12)) {
                by_pid.insert(pid, (comm, u + s));
            }
        }
        Self(by_pid)
    }

    /// (pid, command, ticks used since `earlier`) of every process.
    fn used_since<'a>(&'a self, earlier: &'a Self) -> impl Iterator<Item = (u32, &'a str, u64)> {
        self.0.iter().map(|(pid, (comm, ticks))| {
            let before = earlier.0.get(pid).map_or(0, |(_, t)| *t);
            (*pid, comm.as_str(), ticks.saturating_sub(before))
        })
    }

    /// µs of CPU per item since `earlier` of the processes `pick(pid, command)` selects.
    pub fn us_per_item_of(
        &self,
        earlier: &Self,
        items: usize,
        pick: impl Fn(u32, &str) -> bool,
    ) -> f64 {
        let ticks: u64 = self
            .used_since(earlier)
            .filter(|(pid, comm, _)| pick(*pid, comm))
            .map(|(_, _, t)| t)
            .sum();
        us_per_item(ticks, items)
    }

    /// "postgres 35.1, beam.smp 20.3, …" µs of CPU per item since `earlier`, by
    /// command, the `top` largest.
    pub fn per_item_since(&self, earlier: &Self, items: usize, top: usize) -> String {
        let mut by_comm: HashMap<&str, u64> = HashMap::new();
        for (_, comm, ticks) in self.used_since(earlier) {
            *by_comm.entry(comm).or_default() += ticks;
        }
        let mut v: Vec<(&str, u64)> = by_comm.into_iter().filter(|(_, t)| *t > 0).collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.1));
        v.truncate(top);
        v.iter()
            .map(|(c, t)| format!("{c} {:.1}", us_per_item(*t, items)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Microseconds per item of `ticks` of CPU time (USER_HZ = 100 per second on Linux).
fn us_per_item(ticks: u64, items: usize) -> f64 {
    ticks as f64 * 10_000.0 / items.max(1) as f64
}
