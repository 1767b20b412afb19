//! Tests of OData query parsing, projection and skiptoken paging.

use super::*;

const PROPS: &[&str] = &["id", "displayName", "userType"];
const COLLECTION: Collection = Collection {
    set: "users",
    odata_type: "microsoft.graph.user",
    props: PROPS,
    default_props: Some(&["id", "displayName"]),
    not_on_collection: &[],
    directory: true,
};

fn items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"id": format!("u{i}"), "displayName": format!("User {i}"), "userType": if i % 2 == 0 {"Member"} else {"Guest"}}))
        .collect()
}

fn ctx(raw: &str) -> PageContext<'_> {
    PageContext {
        base_url: "http://h",
        path: "/v1.0/users",
        raw_query: raw,
        eventual: false,
    }
}

#[test]
fn default_properties_without_select() {
    let q = parse_query("").unwrap();
    let page = page(&items(3), &COLLECTION, &q, &ctx("")).unwrap();
    assert!(page["value"][0].get("userType").is_none());
    assert_eq!(page["value"][0]["displayName"], "User 0");
}

#[test]
fn select_is_case_insensitive_and_unknown_is_400() {
    let q = parse_query("$select=USERTYPE").unwrap();
    let p = page(&items(1), &COLLECTION, &q, &ctx("$select=USERTYPE")).unwrap();
    assert_eq!(p["value"][0]["userType"], "Member");
    assert!(p["value"][0].get("displayName").is_none());
    let q = parse_query("$select=nope").unwrap();
    assert_eq!(
        page(&items(1), &COLLECTION, &q, &ctx(""))
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn next_links_cover_every_item_once() {
    let all = items(250);
    let mut raw = "$top=100&$select=id".to_string();
    let mut seen = Vec::new();
    loop {
        let q = parse_query(&raw).unwrap();
        let p = page(&all, &COLLECTION, &q, &ctx(&raw)).unwrap();
        seen.extend(
            p["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].clone()),
        );
        match p.get("@odata.nextLink").and_then(Value::as_str) {
            Some(link) => raw = link.split_once('?').unwrap().1.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 250);
    assert!(raw.contains("$select=id"));
}

#[test]
fn top_over_999_is_rejected_on_directory() {
    let q = parse_query("$top=1000").unwrap();
    let err = page(&items(1), &COLLECTION, &q, &ctx("")).unwrap_err();
    assert!(err.message.contains("Invalid page size"));
}

#[test]
fn advanced_filter_needs_consistency_level_and_count() {
    let q = parse_query("$filter=userType%20ne%20'Guest'").unwrap();
    assert_eq!(
        page(&items(4), &COLLECTION, &q, &ctx("")).unwrap_err().code,
        "Request_UnsupportedQuery"
    );
    let q = parse_query("$filter=userType%20ne%20'Guest'&$count=true").unwrap();
    let mut c = ctx("");
    c.eventual = true;
    let p = page(&items(4), &COLLECTION, &q, &c).unwrap();
    assert_eq!(p["@odata.count"], 2);
    assert_eq!(p["value"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_skiptoken_is_400() {
    let q = parse_query("$skiptoken=garbage!").unwrap();
    assert_eq!(
        page(&items(1), &COLLECTION, &q, &ctx(""))
            .unwrap_err()
            .status,
        400
    );
}
