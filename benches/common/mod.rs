//! Shared support of the bench binaries: timing, peak memory from `/proc/self/status`, machine
//! facts, markdown tables, one-process-per-size runs, and the conversion of a graph-sim tenant
//! into the [`TenantSnapshot`] collection would build from it.
//!
//! Every bench binary includes this module and uses a different part of it.
#![allow(dead_code)]

use m365_posture::checks::domains::dns_names_needed;
use m365_posture::checks::CheckOptions;
use m365_posture::snapshot::{
    AuthMethod, DnsAnswers, HostAnswers, Organization, PerUser, TenantSnapshot, UserId,
    UserRegistrationDetails,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// Errors of a bench run.
pub type BenchError = Box<dyn std::error::Error>;

/// Median and minimum of several timed iterations.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Median duration.
    pub median: Duration,
    /// Fastest duration.
    pub min: Duration,
    /// How many iterations were timed.
    pub iterations: usize,
    /// Mean CPU time (user + system, all threads of this process) per iteration, if readable.
    pub cpu: Option<Duration>,
}

/// Times `iterations` runs of `work` (after one untimed warm-up when `warm_up`). Dropping the
/// output is not timed; CPU time ([`Timing::cpu`]) does include it.
pub fn time_runs<T>(iterations: usize, warm_up: bool, mut work: impl FnMut() -> T) -> Timing {
    if warm_up {
        std::hint::black_box(work());
    }
    let cpu_before = cpu_time();
    let mut runs: Vec<Duration> = (0..iterations.max(1))
        .map(|_| {
            let start = Instant::now();
            let output = work();
            let took = start.elapsed();
            drop(std::hint::black_box(output));
            took
        })
        .collect();
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before) / runs.len() as u32);
    runs.sort();
    Timing {
        median: runs.get(runs.len() / 2).copied().unwrap_or_default(),
        min: runs.first().copied().unwrap_or_default(),
        iterations: runs.len(),
        cpu,
    }
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (clock ticks of
/// 1/100 s, Linux's fixed `USER_HZ` on x86 and arm64).
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// Milliseconds of an optional duration, or `n/a`.
pub fn ms_or_na(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "n/a".to_owned(), ms)
}

/// Milliseconds with two decimals.
pub fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

/// A `/proc/self/status` field in KiB (`VmHWM`, `VmRSS`).
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// KiB as MiB with one decimal, or `n/a`.
pub fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// Resets the peak RSS (`VmHWM`) of this process to its current RSS; false when the kernel
/// refuses (then `VmHWM` is the peak since process start).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Prints a markdown table.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    println!("| {} |", header.join(" | "));
    println!("|{}", header.iter().map(|_| "---|").collect::<String>());
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
}

/// Prints the machine facts the figures depend on: cores, CPU model, load average.
pub fn print_machine() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!(
        "machine: {cores} cores, {model}, load average {}",
        load_average()
    );
}

/// The 1/5/15-minute load averages from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Environment variable that makes a bench binary run one case as a child process.
pub const CHILD_CASE: &str = "M365_BENCH_CASE";

/// The case this process must run, when it is a child.
pub fn child_case() -> Option<String> {
    std::env::var(CHILD_CASE).ok()
}

/// Runs this bench binary again for one case, so that peak RSS belongs to that case alone,
/// and returns the cells (`|`-separated) of the child's last stdout line: its table row.
pub fn run_child(case: &str) -> Result<Vec<String>, BenchError> {
    run_child_lines(case)?
        .pop()
        .ok_or_else(|| format!("case {case} printed nothing").into())
}

/// Like [`run_child`], but every stdout line of the child, split into cells.
pub fn run_child_lines(case: &str) -> Result<Vec<Vec<String>>, BenchError> {
    let output = Command::new(std::env::current_exe()?)
        .env(CHILD_CASE, case)
        .output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("case {case} failed: {stderr}").into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    Ok(stdout
        .lines()
        .map(|line| line.split('|').map(str::to_owned).collect())
        .collect())
}

fn parse_all<T: DeserializeOwned>(values: &[Value]) -> Result<Vec<T>, serde_json::Error> {
    values
        .iter()
        .map(|v| serde_json::from_value(v.clone()))
        .collect()
}

/// A per-user section of `users`, keyed by the listed users' ids (`ids`), shared as the
/// daemon shares them.
fn per_user<T>(
    map: &BTreeMap<String, Vec<Value>>,
    (users, ids): (&[String], &BTreeMap<&str, UserId>),
    parse: impl Fn(&Value) -> Result<T, serde_json::Error>,
) -> Result<PerUser<T>, serde_json::Error> {
    let mut out = PerUser::new();
    for user in users {
        let items = map.get(user).map(Vec::as_slice).unwrap_or_default();
        let parsed: Result<Vec<T>, _> = items.iter().map(&parse).collect();
        let id = ids
            .get(user.as_str())
            .cloned()
            .unwrap_or_else(|| UserId::from(user.as_str()));
        out.insert(id, Ok(parsed?));
    }
    Ok(out)
}

fn registration_label(method: &AuthMethod) -> Option<&'static str> {
    match method {
        AuthMethod::Fido2(_) => Some("fido2"),
        AuthMethod::WindowsHello(_) => Some("windowsHelloForBusiness"),
        AuthMethod::TemporaryAccessPass(_) => Some("temporaryAccessPass"),
        AuthMethod::Other { .. } => None,
    }
}

fn registration_rows(
    users: &[m365_posture::snapshot::User],
    methods: &PerUser<AuthMethod>,
) -> Vec<UserRegistrationDetails> {
    users
        .iter()
        .map(|user| UserRegistrationDetails {
            id: user.id.clone(),
            user_principal_name: user.user_principal_name.clone(),
            methods_registered: methods
                .get(&user.id)
                .and_then(|m| m.as_ref().ok())
                .map(|list| {
                    list.iter()
                        .filter_map(registration_label)
                        .map(Box::from)
                        .collect()
                })
                .unwrap_or_default(),
            last_updated_date_time: None,
        })
        .collect()
}

/// Answers every TXT, A/AAAA and MX name the SPF and DMARC checks need from the tenant's
/// `dns` and `dns_hosts` maps, the way collection does (names absent from them are NXDOMAIN).
fn dns_answers(
    tenant: &graph_sim::TenantFile,
    domains: &[m365_posture::snapshot::Domain],
) -> (DnsAnswers, HostAnswers) {
    let options = CheckOptions::default();
    let mut answers = DnsAnswers::new();
    let mut hosts = HostAnswers::default();
    loop {
        let needed = dns_names_needed(domains, &options, &answers, &hosts);
        if needed.is_empty() {
            return (answers, hosts);
        }
        for name in needed.txt {
            let records = tenant.dns.get(&name).cloned().unwrap_or_default();
            answers.insert(name, Ok(records));
        }
        for name in needed.addresses {
            let records = tenant.dns_hosts.get(&name).cloned().unwrap_or_default();
            let v4 = records.a.iter().map(|a| std::net::IpAddr::V4(*a));
            let v6 = records.aaaa.iter().map(|a| std::net::IpAddr::V6(*a));
            hosts.addresses.insert(name, Ok(v4.chain(v6).collect()));
        }
        for name in needed.mx {
            let mut records = tenant.dns_hosts.get(&name).cloned().unwrap_or_default();
            records.mx.sort();
            let exchanges = records.mx.into_iter().map(|(_, x)| x.to_ascii_lowercase());
            hosts.mx.insert(name, Ok(exchanges.collect()));
        }
    }
}

/// The snapshot a clean collection of `tenant` would produce: every section available, every
/// mailbox read, every DNS name answered.
pub fn snapshot_from_tenant(
    tenant: &graph_sim::TenantFile,
) -> Result<TenantSnapshot, serde_json::Error> {
    let mut snapshot = TenantSnapshot::empty(&tenant.tenant_id, "bench");
    snapshot.organization = Ok(match &tenant.organization {
        Value::Null => Organization {
            id: tenant.tenant_id.clone(),
            ..Organization::default()
        },
        org => serde_json::from_value(org.clone())?,
    });
    let domains: Vec<m365_posture::snapshot::Domain> = parse_all(&tenant.domains)?;
    (snapshot.dns, snapshot.dns_hosts) = dns_answers(tenant, &domains);
    snapshot.domains = Ok(domains);
    let users: Vec<m365_posture::snapshot::User> = parse_all(&tenant.users)?;
    let with_methods: Vec<String> = tenant.authentication_methods.keys().cloned().collect();
    let ids: BTreeMap<&str, UserId> = users.iter().map(|u| (&*u.id, u.id.clone())).collect();
    let methods = per_user(&tenant.authentication_methods, (&with_methods, &ids), |v| {
        AuthMethod::from_graph(v.clone(), None)
    })?;
    snapshot.registration_details = Ok(std::sync::Arc::new(registration_rows(&users, &methods)));
    snapshot.auth_methods = Ok(methods);
    let mailboxes = (tenant.mailboxes.as_slice(), &ids);
    snapshot.calendar_permissions = Ok(per_user(&tenant.calendar_permissions, mailboxes, |v| {
        serde_json::from_value(v.clone())
    })?);
    snapshot.message_rules = Ok(per_user(&tenant.message_rules, mailboxes, |v| {
        serde_json::from_value(v.clone())
    })?);
    snapshot.applications = Ok(parse_all(&tenant.applications)?);
    snapshot.service_principals = Ok(parse_all(&tenant.service_principals)?);
    snapshot.users = Ok(users);
    Ok(snapshot)
}
