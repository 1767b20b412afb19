//! Random fault episodes for the chaos soak, drawn from the soak's seeded RNG: graph-sim's
//! `faults` object (latency, 429 bursts with `Retry-After`, 5xx, connection resets, malformed
//! and truncated bodies on random paths, including the token endpoint and `$batch`; DNS
//! SERVFAIL, silence and latency for random names), or a calm episode without faults.
//! The statuses are those Graph documents as transient: 429 with `Retry-After` when a client
//! is throttled (<https://learn.microsoft.com/graph/throttling>), 500, 503 (with
//! `Retry-After`) and 504 (<https://learn.microsoft.com/graph/errors>, "HTTP status codes").
//! graph-sim's throttling model is off: scans every second would sit in its reports bucket
//! (5 requests per 10 s), and 429s come as bursts here instead.

use graph_sim::{Faults, PathFault, ThrottleSettings};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// Path templates the agent reads (graph-sim's `/_sim/stats` names), `*` for all others.
const PATHS: [&str; 10] = [
    "*",
    "/{tenant}/oauth2/v2.0/token",
    "/v1.0/users",
    "/v1.0/domains",
    "/v1.0/applications",
    "/v1.0/servicePrincipals",
    "/v1.0/$batch",
    "/v1.0/reports/authenticationMethods/userRegistrationDetails",
    "/v1.0/users/{id}/mailFolders/inbox/messageRules",
    "/v1.0/users/{id}/authentication/methods",
];

/// DNS names the agent asks for contoso's domains.
const NAMES: [&str; 6] = [
    "contoso.com",
    "_dmarc.contoso.com",
    "fabrikam.net",
    "_dmarc.fabrikam.net",
    "contoso.onmicrosoft.com",
    "spf.protection.outlook.com",
];

/// No faults, and graph-sim's throttling model off.
pub fn calm() -> Faults {
    Faults {
        throttle: ThrottleSettings {
            enabled: false,
            ..ThrottleSettings::default()
        },
        ..Faults::default()
    }
}

/// One episode: calm one time in four, else faults on one to three paths and some names.
pub fn episode(rng: &mut StdRng) -> Faults {
    let mut faults = calm();
    faults.seed = rng.gen();
    if rng.gen_bool(0.25) {
        return faults;
    }
    for _ in 0..rng.gen_range(1..=3) {
        let path = PATHS.choose(rng).copied().unwrap_or("*");
        faults.paths.insert(path.to_owned(), path_fault(rng));
    }
    if rng.gen_bool(0.4) {
        faults.dns_servfail = pick(rng, &NAMES);
    }
    if rng.gen_bool(0.15) {
        faults.dns_timeout = pick(rng, &NAMES);
    }
    if rng.gen_bool(0.3) {
        faults.dns_latency_ms = Some([0, rng.gen_range(1..300)]);
    }
    faults
}

fn path_fault(rng: &mut StdRng) -> PathFault {
    let burst = rng.gen_bool(0.3);
    let status = if burst {
        429
    } else {
        *[500, 503, 504].choose(rng).unwrap_or(&503)
    };
    PathFault {
        status: Some(status),
        rate: if burst {
            rng.gen_range(0.5..0.95)
        } else {
            rng.gen_range(0.0..0.4)
        },
        retry_after_secs: Some(f64::from(rng.gen_range(0..3_u8))),
        malformed_rate: rng.gen_range(0.0..0.15),
        truncated_rate: rng.gen_range(0.0..0.15),
        reset_rate: rng.gen_range(0.0..0.15),
        latency_ms: rng.gen_bool(0.5).then(|| [0, rng.gen_range(1..600)]),
        query_contains: None,
    }
}

/// A random non-empty subset of `names`.
fn pick(rng: &mut StdRng, names: &[&str]) -> Vec<String> {
    let count = rng.gen_range(1..=names.len());
    names
        .choose_multiple(rng, count)
        .map(|n| (*n).to_owned())
        .collect()
}
