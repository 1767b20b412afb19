//! Real syslog receivers for the end-to-end sink tests: rsyslog (unpacked by
//! `.ci/receivers-setup.sh`) and syslog-ng, started in the foreground on loopback with configs
//! written to a temp dir, each writing every received message as one JSON line. The CEF
//! oracles are in `oracles.rs`, the test PKI in `certs.rs`.
//!
//! Tools are found through `M365_RECEIVERS_DIR` (default `/opt/m365-posture-receivers`) and
//! `PATH`. When one is missing the tests fail under `CI=true` and skip with a printed reason
//! otherwise.

#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // blocking waits in test helpers

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "certs.rs"]
mod certs;
#[path = "oracles.rs"]
mod oracles;
pub use certs::{make_certs, Certs};
#[allow(unused_imports)] // the outage tests use no oracle
pub use oracles::{parse_cefp, parse_lognormalizer};

pub struct Tools {
    pub rsyslogd: PathBuf,
    pub rsyslog_modules: PathBuf,
    pub syslog_ng: PathBuf,
    pub lognormalizer: PathBuf,
    pub python: PathBuf,
    pub openssl: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The receivers and oracles, or `None` (with the reason printed) when some are missing
/// outside CI. Under `CI=true` a missing tool is a test failure.
pub fn tools() -> Option<Tools> {
    let dir = PathBuf::from(
        std::env::var("M365_RECEIVERS_DIR")
            .unwrap_or_else(|_| "/opt/m365-posture-receivers".into()),
    );
    let rsyslogd = dir.join("rsyslog/usr/sbin/rsyslogd");
    let rsyslog_modules = std::fs::read_dir(dir.join("rsyslog/usr/lib"))
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("rsyslog"))
                .find(|p| p.join("imtcp.so").is_file())
        });
    let python = dir.join("venv/bin/python");
    let found = (
        rsyslogd.is_file().then_some(rsyslogd),
        rsyslog_modules,
        on_path("syslog-ng"),
        on_path("lognormalizer"),
        python.is_file().then_some(python),
        on_path("openssl"),
    );
    match found {
        (
            Some(rsyslogd),
            Some(rsyslog_modules),
            Some(syslog_ng),
            Some(lognormalizer),
            Some(python),
            Some(openssl),
        ) => Some(Tools {
            rsyslogd,
            rsyslog_modules,
            syslog_ng,
            lognormalizer,
            python,
            openssl,
        }),
        missing => {
            let reason = format!(
                "syslog receivers or CEF oracles missing under {} or on PATH ({missing:?}); run .ci/receivers-setup.sh",
                dir.display()
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{reason}");
            }
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

/// Which receiver, source and transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// rsyslog imtcp (octet counting and LF auto-detected).
    RsyslogTcp,
    /// rsyslog imudp.
    RsyslogUdp,
    /// rsyslog imtcp with the gtls stream driver (anonymous client).
    RsyslogTls,
    /// rsyslog imuxsock on a private unix socket.
    RsyslogUnix,
    /// syslog-ng `syslog()` source over TCP (octet counting only).
    SyslogNgSyslogTcp,
    /// syslog-ng `network()` source over TCP (LF only), RFC 5424 parsing.
    SyslogNgNetworkTcp,
    /// syslog-ng `network()` source over UDP, RFC 5424 parsing.
    SyslogNgNetworkUdp,
    /// syslog-ng `syslog()` source over TLS requiring a trusted client certificate.
    SyslogNgTlsMutual,
}

impl Kind {
    fn is_udp(self) -> bool {
        matches!(self, Self::RsyslogUdp | Self::SyslogNgNetworkUdp)
    }
    fn is_rsyslog(self) -> bool {
        matches!(
            self,
            Self::RsyslogTcp | Self::RsyslogUdp | Self::RsyslogTls | Self::RsyslogUnix
        )
    }
}

/// One message as the receiver stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub msg: String,
    pub host: String,
    pub app: String,
    pub procid: String,
    pub msgid: String,
}

/// A running receiver; killed on drop.
pub struct Receiver {
    pub kind: Kind,
    /// `127.0.0.1:PORT`, or the socket path for unix.
    pub address: String,
    dir: PathBuf,
    out: PathBuf,
    child: Option<Child>,
    command: (PathBuf, Vec<String>),
}

fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

impl Receiver {
    pub fn start(tools: &Tools, kind: Kind, dir: &Path, certs: &Certs) -> Receiver {
        std::fs::create_dir_all(dir).unwrap();
        let out = dir.join("received.jsonl");
        let (address, port) = if kind == Kind::RsyslogUnix {
            (dir.join("log.sock").display().to_string(), 0)
        } else {
            let port = free_port(kind.is_udp());
            (format!("127.0.0.1:{port}"), port)
        };
        let conf = dir.join("receiver.conf");
        let command = if kind.is_rsyslog() {
            std::fs::create_dir_all(dir.join("work")).unwrap();
            std::fs::write(&conf, rsyslog_conf(kind, port, &address, dir, &out, certs)).unwrap();
            let args = [
                "-n".to_owned(),
                "-f".into(),
                path_str(&conf),
                "-M".into(),
                path_str(&tools.rsyslog_modules),
                "-i".into(),
                path_str(&dir.join("rsyslog.pid")),
            ];
            (tools.rsyslogd.clone(), args.to_vec())
        } else {
            std::fs::write(&conf, syslog_ng_conf(kind, port, &out, certs)).unwrap();
            let args = [
                "-F".to_owned(),
                "--no-caps".into(),
                "-f".into(),
                path_str(&conf),
                "-R".into(),
                path_str(&dir.join("persist")),
                "-p".into(),
                path_str(&dir.join("syslog-ng.pid")),
                "-c".into(),
                path_str(&dir.join("syslog-ng.ctl")),
            ];
            (tools.syslog_ng.clone(), args.to_vec())
        };
        let mut receiver = Receiver {
            kind,
            address,
            dir: dir.to_owned(),
            out,
            child: None,
            command,
        };
        receiver.launch();
        receiver
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.join("receiver.log")).unwrap();
        let child = Command::new(&self.command.0)
            .args(&self.command.1)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("{:?} exited with {status}: {}", self.kind, self.log());
            }
            let ready = match self.kind {
                Kind::RsyslogUnix => Path::new(&self.address).exists(),
                kind if kind.is_udp() => self.probe_udp(),
                _ => std::net::TcpStream::connect(&self.address).is_ok(),
            };
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} not ready: {}",
                self.kind,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// UDP has no connect: send a probe until the receiver has written it.
    fn probe_udp(&self) -> bool {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let _ = socket.send_to(
            b"<165>1 2026-01-01T00:00:00Z probe probe - probe - probe",
            &self.address,
        );
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&self.out).is_ok_and(|text| text.contains("probe"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("receiver.log")).unwrap_or_default()
    }

    /// Kills the receiver (SIGKILL, like a crash or a pulled cable for the sender).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.kind == Kind::RsyslogUnix {
            let _ = std::fs::remove_file(&self.address);
        }
    }

    /// Stops the receiver with SIGTERM (it drains what it has read) and starts it again.
    pub fn restart_graceful(&mut self) {
        self.stop_graceful();
        self.launch();
    }

    /// Starts a stopped receiver again on the same address, appending to the same output.
    pub fn start_again(&mut self) {
        self.launch();
    }

    /// Stops the receiver with SIGTERM: it drains what it has read; the port refuses.
    pub fn stop_graceful(&mut self) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Starts the receiver again on the same address, appending to the same output.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Every stored message whose MSG is a CEF or JSON event (probes left out).
    pub fn received(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("{e}: {line}"))
            })
            .map(|v| {
                let get = |keys: &[&str]| {
                    keys.iter()
                        .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
                        .unwrap_or("")
                        .to_owned()
                };
                Received {
                    msg: get(&["msg", "MESSAGE"]),
                    host: get(&["hostname", "HOST"]),
                    app: get(&["app-name", "PROGRAM"]),
                    procid: get(&["procid", "PID"]),
                    msgid: get(&["msgid", "MSGID"]),
                }
            })
            .filter(|r| r.app != "probe")
            .collect()
    }

    /// Waits until at least `count` events were stored.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: {} of {count} events arrived; log: {}",
                self.kind,
                got.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

fn rsyslog_conf(
    kind: Kind,
    port: u16,
    address: &str,
    dir: &Path,
    out: &Path,
    certs: &Certs,
) -> String {
    let tls_global = if kind == Kind::RsyslogTls {
        format!(
            r#" defaultNetstreamDriverCAFile="{}" defaultNetstreamDriverCertFile="{}" defaultNetstreamDriverKeyFile="{}""#,
            certs.ca.display(),
            certs.server_cert.display(),
            certs.server_key.display()
        )
    } else {
        String::new()
    };
    let input = match kind {
        Kind::RsyslogTcp => format!(
            r#"module(load="imtcp") input(type="imtcp" port="{port}" address="127.0.0.1" ruleset="r")"#
        ),
        Kind::RsyslogTls => format!(
            r#"module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon") input(type="imtcp" port="{port}" address="127.0.0.1" ruleset="r")"#
        ),
        Kind::RsyslogUdp => format!(
            r#"module(load="imudp") input(type="imudp" port="{port}" address="127.0.0.1" ruleset="r")"#
        ),
        _ => format!(
            r#"module(load="imuxsock" SysSock.Use="off") input(type="imuxsock" Socket="{address}" UseSpecialParser="off" ruleset="r")"#
        ),
    };
    format!(
        r#"global(workDirectory="{work}" maxMessageSize="64k"{tls_global})
{input}
template(name="j" type="list") {{ property(name="jsonmesg") constant(value="\n") }}
ruleset(name="r") {{ action(type="omfile" file="{out}" template="j") }}
"#,
        work = dir.join("work").display(),
        out = out.display()
    )
}

fn syslog_ng_conf(kind: Kind, port: u16, out: &Path, certs: &Certs) -> String {
    let source = match kind {
        Kind::SyslogNgSyslogTcp => {
            format!(r#"syslog(ip("127.0.0.1") port({port}) transport("tcp"))"#)
        }
        Kind::SyslogNgNetworkTcp => format!(
            r#"network(ip("127.0.0.1") port({port}) transport("tcp") flags(syslog-protocol))"#
        ),
        Kind::SyslogNgNetworkUdp => format!(
            r#"network(ip("127.0.0.1") port({port}) transport("udp") flags(syslog-protocol))"#
        ),
        _ => format!(
            r#"syslog(ip("127.0.0.1") port({port}) transport("tls") tls(key-file("{}") cert-file("{}") ca-file("{}") peer-verify(required-trusted)))"#,
            certs.server_key.display(),
            certs.server_cert.display(),
            certs.ca.display()
        ),
    };
    format!(
        r#"@version: 3.38
options {{ keep-hostname(yes); log-msg-size(65536); stats-freq(0); use-dns(no); }};
source s {{ {source}; }};
destination d {{ file("{out}" template("$(format-json --scope rfc5424 --scope nv-pairs)\n")); }};
log {{ source(s); destination(d); }};
"#,
        out = out.display()
    )
}
