//! The man page the package ships (`packaging/man/m365-posture.1`, installed as
//! m365-posture(1)) is generated from the command line with clap_mangen and must match it:
//! after changing `src/cli.rs`, regenerate with
//! `M365_POSTURE_UPDATE_MAN=1 cargo test --test man_page`.
#![allow(clippy::unwrap_used)]

use clap::CommandFactory;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/man/m365-posture.1");

/// The page for the command line, with the plain version (no revision, so it does not change
/// with every commit).
fn rendered() -> String {
    let command = m365_posture::cli::Cli::command().version(m365_posture::build_info::VERSION);
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .section("1")
        .manual("m365-posture manual")
        .render(&mut page)
        .unwrap();
    String::from_utf8(page).unwrap()
}

#[test]
fn shipped_man_page_is_generated_from_the_command_line() {
    let page = rendered();
    if std::env::var_os("M365_POSTURE_UPDATE_MAN").is_some() {
        std::fs::write(PATH, &page).unwrap();
    }
    let shipped = std::fs::read_to_string(PATH).unwrap_or_default();
    assert!(
        shipped == page,
        "packaging/man/m365-posture.1 is stale: run M365_POSTURE_UPDATE_MAN=1 cargo test --test man_page"
    );
    for needle in [
        "check\\-config",
        "report",
        "78 bad config",
        ".TH m365-posture 1",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
}
