//! Tests of the `$filter` parser and evaluator.

use super::*;
use serde_json::json;

fn check(filter: &str, object: Value) -> bool {
    parse(filter).unwrap().matches(&object)
}

#[test]
fn registration_filter_of_the_agent() {
    let f = "methodsRegistered/any(m:m eq 'fido2') or methodsRegistered/any(m:m eq 'passKeyDeviceBound') or methodsRegistered/any(m:m eq 'windowsHelloForBusiness')";
    assert!(check(
        f,
        json!({"methodsRegistered": ["email", "windowsHelloForBusiness"]})
    ));
    assert!(!check(f, json!({"methodsRegistered": ["email"]})));
    assert!(!check(f, json!({"methodsRegistered": null})));
}

#[test]
fn comparisons_and_functions() {
    let u = json!({"userType": "Member", "accountEnabled": false, "displayName": "Adele Vance",
                   "createdDateTime": "2024-01-02T00:00:00Z"});
    assert!(check("userType eq 'member'", u.clone()));
    assert!(check(
        "accountEnabled eq false and startswith(displayName,'adele')",
        u.clone()
    ));
    assert!(check("createdDateTime ge 2024-01-01T00:00:00Z", u.clone()));
    assert!(check("userType in ('Guest','Member')", u.clone()));
    assert!(!check("not (userType eq 'Member')", u.clone()));
    assert!(check("endswith(displayName,'vance')", u));
}

#[test]
fn advanced_operators_are_detected() {
    assert!(parse("userType ne 'Guest'").unwrap().is_advanced());
    assert!(parse("endswith(mail,'@x.com')").unwrap().is_advanced());
    assert!(!parse("userType eq 'Guest'").unwrap().is_advanced());
}

#[test]
fn syntax_errors_and_unknown_properties() {
    assert!(parse("userType eq").is_err());
    assert!(parse("userType xx 'a'").is_err());
    let e = parse("bogus eq 1").unwrap();
    assert_eq!(e.unknown_property(&["userType"]), Some("bogus".into()));
}
