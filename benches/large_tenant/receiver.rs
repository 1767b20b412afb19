//! The bench's measuring device for event delivery: a TCP syslog listener on loopback that
//! reads RFC 6587 octet-counted frames (`LEN SP MSG`), as the daemon's `framing =
//! "octet-counting"` sends them, and records each CEF event's `act`, finding (`cs2`), resource
//! (`cs3`) and event id (`cs6`) with its arrival time. It is not a SIEM: the end-to-end tests
//! in `tests/` use real rsyslog and syslog-ng; here only counting and timing matter.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;

/// One received event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Received {
    /// `new` or `resolved`.
    pub action: String,
    /// Finding id (`cs2`).
    pub finding: String,
    /// Resource id (`cs3`).
    pub resource: String,
    /// Event id (`cs6`), the dedupe key.
    pub event_id: String,
}

/// Everything received so far.
#[derive(Debug, Default)]
pub struct Log {
    /// Events in arrival order (duplicates included).
    pub events: Vec<Received>,
    /// Arrival of the first and of the latest frame.
    pub first: Option<Instant>,
    /// Arrival of the latest frame.
    pub last: Option<Instant>,
}

impl Log {
    /// Distinct event ids.
    pub fn distinct(&self) -> usize {
        self.events
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// A running receiver.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it received.
    pub log: Arc<Mutex<Log>>,
}

impl Receiver {
    /// Binds `127.0.0.1:0` and accepts connections until the runtime ends.
    pub async fn start() -> std::io::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(read_frames(stream, Arc::clone(&shared)));
            }
        });
        Ok(Receiver { addr, log })
    }

    /// A copy of the events received so far and the drain span (first to last arrival).
    pub fn snapshot(&self) -> (Vec<Received>, Option<std::time::Duration>) {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let span = log.first.zip(log.last).map(|(a, b)| b - a);
        (log.events.clone(), span)
    }

    /// Forgets what was received (between cycles).
    pub fn clear(&self) {
        *self.log.lock().unwrap_or_else(|p| p.into_inner()) = Log::default();
    }

    /// Events received so far.
    pub fn count(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .len()
    }
}

async fn read_frames(stream: tokio::net::TcpStream, log: Arc<Mutex<Log>>) {
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut length = Vec::new();
    loop {
        length.clear();
        match reader.read_until(b' ', &mut length).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Some(size) = std::str::from_utf8(&length)
            .ok()
            .and_then(|t| t.trim().parse::<usize>().ok())
        else {
            return;
        };
        let mut frame = vec![0; size];
        if reader.read_exact(&mut frame).await.is_err() {
            return;
        }
        let now = Instant::now();
        let text = String::from_utf8_lossy(&frame);
        let event = Received {
            action: extension(&text, "act"),
            finding: extension(&text, "cs2"),
            resource: extension(&text, "cs3"),
            event_id: extension(&text, "cs6"),
        };
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        log.first.get_or_insert(now);
        log.last = Some(now);
        log.events.push(event);
    }
}

/// The value of CEF extension `key` up to the next space (the values read here have none),
/// with CEF's extension escapes undone (`\=`, `\\`: a rule id such as `KmOpXd/idc0=` arrives
/// as `KmOpXd/idc0\=`).
fn extension(text: &str, key: &str) -> String {
    let marker = format!(" {key}=");
    let raw = text
        .find(&marker)
        .and_then(|at| text.get(at + marker.len()..))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default();
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => value.push('\n'),
            Some('r') => value.push('\r'),
            Some(other) => value.push(other),
            None => value.push('\\'),
        }
    }
    value
}
