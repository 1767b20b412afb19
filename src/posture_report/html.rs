//! The report as one self-contained HTML page: inline CSS, no scripts, no external assets, so
//! it can be mailed or archived and opens in any browser. Every value from the tenant (names,
//! evidence) is escaped; the page's only links are the catalogue's reference URLs.

use super::{PostureReport, ReportedInstance, SuppressedInstance, TenantPosture};
use std::fmt::Write as _;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#1b1b1b}\
h1{margin-bottom:0}table{border-collapse:collapse;width:100%;margin:1em 0}\
th,td{border:1px solid #ccc;padding:.4em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}pre{white-space:pre-wrap;word-break:break-all;margin:0;font-size:.85em}\
.sev{font-weight:bold;text-transform:uppercase;white-space:nowrap}\
.sev-critical .sev{color:#fff;background:#6a0dad}.sev-high .sev{color:#fff;background:#c4262e}\
.sev-medium .sev{background:#f2a900}.sev-low .sev{background:#cfe2f3}\
.id{color:#555;font-family:monospace;font-size:.85em}ul{margin:.3em 0;padding-left:1.2em}\
.none{color:#2e7d32}.evidence{width:26%}.remedy{width:26%}";

/// Renders the whole page.
pub fn render_html(report: &PostureReport) -> String {
    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str("<title>m365-posture report</title>\n");
    let _ = writeln!(page, "<style>{STYLE}</style>\n</head>\n<body>");
    page.push_str("<h1>Microsoft 365 security posture</h1>\n");
    let _ = writeln!(
        page,
        "<p>Generated {} by m365-posture {} from its state file.</p>",
        escape(&report.generated_at),
        crate::build_info::VERSION
    );
    for tenant in &report.tenants {
        tenant_section(&mut page, tenant);
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn tenant_section(page: &mut String, tenant: &TenantPosture) {
    let name = escape(&tenant.tenant);
    let _ = writeln!(page, "<section class=\"tenant\" data-tenant=\"{name}\">");
    let _ = writeln!(page, "<h2>Tenant {name}</h2>");
    let scanned = tenant
        .last_success
        .as_deref()
        .map_or_else(|| "never".to_owned(), escape);
    let _ = writeln!(
        page,
        "<p>Last successful scan: {scanned}. Open findings: {}; suppressed: {}.</p>",
        tenant.open.len(),
        tenant.suppressed.len()
    );
    summary_table(page, tenant);
    page.push_str("<h3>Open findings</h3>\n");
    if tenant.open.is_empty() && tenant.not_evaluated.is_empty() {
        page.push_str("<p class=\"none\">No open findings.</p>\n");
    } else if tenant.open.is_empty() {
        page.push_str("<p>No open findings among the checks evaluated; see the checks not fully evaluated below.</p>\n");
    } else {
        page.push_str("<table class=\"findings\">\n<thead><tr><th>Severity</th><th>Finding</th><th>Resource</th><th>First seen</th><th>Evidence</th><th>Remediation and references</th></tr></thead>\n<tbody>\n");
        for instance in &tenant.open {
            instance_row(page, instance, None);
        }
        page.push_str("</tbody>\n</table>\n");
    }
    unevaluated_table(page, tenant);
    if !tenant.suppressed.is_empty() {
        page.push_str("<h3>Suppressed (accepted) findings</h3>\n");
        page.push_str("<table class=\"suppressed\">\n<thead><tr><th>Severity</th><th>Finding</th><th>Resource</th><th>First seen</th><th>Evidence</th><th>Remediation and references</th><th>Reason</th><th>Owner</th><th>Expires</th></tr></thead>\n<tbody>\n");
        for suppressed in &tenant.suppressed {
            instance_row(page, &suppressed.instance, Some(suppressed));
        }
        page.push_str("</tbody>\n</table>\n");
    }
    page.push_str("</section>\n");
}

/// The checks the last scan skipped or evaluated in part: no finding under them is no evidence.
fn unevaluated_table(page: &mut String, tenant: &TenantPosture) {
    if tenant.not_evaluated.is_empty() {
        return;
    }
    page.push_str("<h3>Checks not fully evaluated at the last scan</h3>\n");
    page.push_str("<p>Their findings keep the state they had; a missing finding here is not a clean result.</p>\n");
    page.push_str("<table class=\"not-evaluated\">\n<thead><tr><th>Check</th><th>Status</th><th>Reason</th><th>Last evaluated</th></tr></thead>\n<tbody>\n");
    for check in &tenant.not_evaluated {
        let _ = writeln!(
            page,
            "<tr data-finding=\"{id}\"><td>{title}<br><span class=\"id\">{id}</span></td><td>{status}</td><td>{reason}</td><td>{when}</td></tr>",
            id = check.finding.as_str(),
            title = escape(check.title),
            status = escape(&check.status),
            reason = escape(check.reason.as_deref().unwrap_or("")),
            when = check.last_evaluated.as_deref().map_or_else(|| "never".to_owned(), escape),
        );
    }
    page.push_str("</tbody>\n</table>\n");
}

fn summary_table(page: &mut String, tenant: &TenantPosture) {
    if tenant.counts.is_empty() {
        return;
    }
    page.push_str("<table class=\"summary\">\n<thead><tr><th>Severity</th><th>Category</th><th>Open</th></tr></thead>\n<tbody>\n");
    for count in &tenant.counts {
        let _ = writeln!(
            page,
            "<tr class=\"sev-{sev}\"><td class=\"sev\">{sev}</td><td>{}</td><td>{}</td></tr>",
            count.category.as_str(),
            count.count,
            sev = count.severity.as_str(),
        );
    }
    page.push_str("</tbody>\n</table>\n");
}

fn instance_row(
    page: &mut String,
    instance: &ReportedInstance,
    suppressed: Option<&SuppressedInstance>,
) {
    let evidence = serde_json::to_string_pretty(&instance.details).unwrap_or_default();
    let _ = write!(
        page,
        "<tr class=\"finding sev-{sev}\" data-finding=\"{id}\" data-resource-id=\"{rid}\">\
         <td class=\"sev\">{sev}</td>\
         <td>{title}<br><span class=\"id\">{id}</span><br>{category}</td>\
         <td>{name}<br><span class=\"id\">{rid}</span></td>\
         <td>{first}</td><td class=\"evidence\"><pre>{evidence}</pre></td><td class=\"remedy\">{remediation}<ul>",
        sev = instance.severity.as_str(),
        id = instance.finding.as_str(),
        rid = escape(&instance.resource_id),
        title = escape(instance.title),
        category = instance.category.as_str(),
        name = escape(&instance.resource_name),
        first = escape(&instance.first_seen),
        evidence = escape(&evidence),
        remediation = escape(instance.remediation),
    );
    for reference in instance.references {
        let _ = write!(
            page,
            "<li><a href=\"{url}\">{id}</a></li>",
            url = escape(reference.url),
            id = escape(&reference.label()),
        );
    }
    page.push_str("</ul></td>");
    if let Some(s) = suppressed {
        let expires = s
            .expires
            .as_deref()
            .map_or_else(|| "never".to_owned(), escape);
        let _ = write!(
            page,
            "<td>{}</td><td>{}</td><td>{expires}</td>",
            escape(&s.reason),
            escape(&s.owner)
        );
    }
    page.push_str("</tr>\n");
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
