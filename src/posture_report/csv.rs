//! The report as CSV (RFC 4180): one row per open instance, open and suppressed alike (the
//! `state` column tells them apart), for spreadsheets and GRC tools. A cell that a spreadsheet
//! would run as a formula (starting with `=`, `+`, `-`, `@`, TAB or CR) gets a leading `'`:
//! resource names and evidence come from the tenant and are not trusted.

use super::{PostureReport, ReportedInstance};

/// The header row.
pub const COLUMNS: [&str; 17] = [
    "tenant",
    "state",
    "severity",
    "category",
    "finding",
    "title",
    "resource_id",
    "resource_name",
    "first_seen",
    "last_seen",
    "details",
    "remediation",
    "references",
    "reference_urls",
    "suppression_reason",
    "suppression_owner",
    "suppression_expires",
];

/// Renders the report; lines end with CRLF as RFC 4180 says.
pub fn render_csv(report: &PostureReport) -> String {
    let mut out = row(COLUMNS.iter().map(|c| (*c).to_owned()));
    for tenant in &report.tenants {
        for instance in &tenant.open {
            out.push_str(&row(cells(&tenant.tenant, "open", instance, ["", "", ""])));
        }
        for s in &tenant.suppressed {
            let expires = s.expires.as_deref().unwrap_or("");
            let extra = [s.reason.as_str(), s.owner.as_str(), expires];
            out.push_str(&row(cells(
                &tenant.tenant,
                "suppressed",
                &s.instance,
                extra,
            )));
        }
    }
    out
}

fn cells(
    tenant: &str,
    state: &str,
    instance: &ReportedInstance,
    suppression: [&str; 3],
) -> Vec<String> {
    let ids: Vec<String> = instance.references.iter().map(|r| r.label()).collect();
    let urls: Vec<&str> = instance.references.iter().map(|r| r.url).collect();
    let mut cells = vec![
        tenant.to_owned(),
        state.to_owned(),
        instance.severity.as_str().to_owned(),
        instance.category.as_str().to_owned(),
        instance.finding.as_str().to_owned(),
        instance.title.to_owned(),
        instance.resource_id.clone(),
        instance.resource_name.clone(),
        instance.first_seen.clone(),
        instance.last_seen.clone(),
        serde_json::to_string(&instance.details).unwrap_or_default(),
        instance.remediation.to_owned(),
        ids.join("; "),
        urls.join(" "),
    ];
    cells.extend(suppression.iter().map(|s| (*s).to_owned()));
    cells
}

fn row(cells: impl IntoIterator<Item = String>) -> String {
    let cells: Vec<String> = cells.into_iter().map(|c| quote(&defuse(c))).collect();
    let mut text = cells.join(",");
    text.push_str("\r\n");
    text
}

/// A leading `'` on a cell a spreadsheet would evaluate as a formula.
fn defuse(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// Quotes a cell when it holds a comma, quote, CR or LF (quotes doubled).
fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}
