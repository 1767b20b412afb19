//! Tests of the `user.*` checks against Graph-shaped fixtures.

use super::*;
use crate::checks::test_fixtures::*;
use crate::snapshot::Unavailable;
use FindingId::*;

fn options() -> CheckOptions {
    CheckOptions::default()
}

fn upns(id: FindingId, users_case: &str, options: &CheckOptions) -> Vec<String> {
    let snapshot = snapshot(users_case);
    let findings = evaluation(run(id, &snapshot, options)).findings;
    findings
        .iter()
        .map(|f| f.resource_name.split(['@', '_']).next().unwrap().to_owned())
        .collect()
}

fn sorted(mut names: Vec<&str>) -> Vec<String> {
    names.sort();
    names.into_iter().map(str::to_owned).collect()
}

fn sorted_upns(id: FindingId, users_case: &str, options: &CheckOptions) -> Vec<String> {
    let mut found = upns(id, users_case, options);
    found.sort();
    found
}

#[test]
fn every_user_check_is_skipped_when_users_are_unavailable() {
    let mut snapshot = snapshot("account_state");
    snapshot.users = Err(denied("User.Read.All"));
    for id in FindingId::ALL
        .iter()
        .filter(|id| id.as_str().starts_with("user."))
    {
        let reason = skip_reason(run(*id, &snapshot, &options()));
        assert!(
            reason == "permission_denied: User.Read.All" || reason.starts_with("not_collected"),
            "{id}: {reason}"
        );
    }
}

#[test]
fn provisioning_errors_fire_per_user_with_the_errors_in_details() {
    let snapshot = snapshot("provisioning_errors");
    let found = findings(OnpremProvisioningError, &snapshot);
    assert_eq!(names(&found), ["conflict@contoso.com"]);
    let first = &found[0];
    assert_eq!(first.resource_id, user_id(&snapshot, "conflict"));
    assert_eq!(first.details["error_count"], 2);
    assert_eq!(
        first.details["errors"][0]["propertyCausingError"],
        "ProxyAddress"
    );
    assert_eq!(first.details["on_premises_sync_enabled"], false);
    assert_eq!(first.details["errors_sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn password_expiration_parses_the_comma_list_with_spaces_and_case() {
    let found = sorted_upns(PasswordExpirationDisabled, "password_policies", &options());
    assert_eq!(
        found,
        sorted(vec!["both.flags", "lower.case", "spaced.list"])
    );
    let snapshot = snapshot("password_policies");
    let synced = findings(PasswordExpirationDisabled, &snapshot)
        .into_iter()
        .find(|f| f.resource_name.starts_with("lower.case"))
        .unwrap();
    assert_eq!(synced.details["synced"], true);
    assert_eq!(
        synced.details["password_policies"],
        "disablepasswordexpiration"
    );
}

#[test]
fn password_expiration_can_skip_synced_users() {
    let options = CheckOptions {
        password_expiration_exclude_synced: true,
        ..options()
    };
    let found = sorted_upns(PasswordExpirationDisabled, "password_policies", &options);
    assert_eq!(found, sorted(vec!["both.flags", "spaced.list"]));
}

#[test]
fn strong_password_disabled_uses_the_same_parsing() {
    let found = sorted_upns(StrongPasswordDisabled, "password_policies", &options());
    assert_eq!(found, sorted(vec!["both.flags", "spaced.list"]));
}

#[test]
fn password_age_fires_only_for_enabled_members_past_the_threshold() {
    let found = sorted_upns(PasswordNotChanged, "password_age", &options());
    assert_eq!(
        found,
        sorted(vec!["old.member", "ninety.plus.second", "old.synced"])
    );
    let snapshot = snapshot("password_age");
    let old = findings(PasswordNotChanged, &snapshot)
        .into_iter()
        .find(|f| f.resource_name.starts_with("old.member"))
        .unwrap();
    assert_eq!(old.details["age_days"], 149);
    assert_eq!(old.details["max_age_days"], 90);
    assert_eq!(
        old.details["last_password_change_date_time"],
        "2025-01-02T10:00:00Z"
    );
}

#[test]
fn password_age_includes_guests_disabled_users_and_other_thresholds_on_request() {
    let options = CheckOptions {
        password_age_include_guests: true,
        password_age_include_disabled: true,
        password_max_age_days: 30,
        ..options()
    };
    let found = sorted_upns(PasswordNotChanged, "password_age", &options);
    let expected = [
        "old.member",
        "exactly.ninety",
        "ninety.plus.second",
        "old.guest",
        "old.disabled",
        "old.synced",
    ];
    assert_eq!(found, sorted(expected.to_vec()));
}

#[test]
fn sync_disabled_flags_false_only_never_null() {
    let snapshot = snapshot("sync_state");
    let found = findings(OnpremSyncDisabled, &snapshot);
    assert_eq!(names(&found), ["formerly.synced@contoso.com"]);
    assert_eq!(found[0].details["on_premises_immutable_id_set"], true);
}

#[test]
fn sync_stale_fires_on_old_or_missing_sync_but_not_at_the_threshold() {
    let found = sorted_upns(OnpremSyncStale, "sync_state", &options());
    assert_eq!(found, sorted(vec!["stale.sync", "never.synced.time"]));
    let snapshot = snapshot("sync_state");
    let missing = findings(OnpremSyncStale, &snapshot)
        .into_iter()
        .find(|f| f.resource_name.starts_with("never"))
        .unwrap();
    assert_eq!(
        missing.details["on_premises_last_sync_date_time"],
        Value::Null
    );
    assert_eq!(
        missing.details["tenant_last_sync_date_time"],
        "2025-05-31T22:00:00Z"
    );
}

#[test]
fn sync_stale_can_require_the_tenant_sync_to_be_stale_too() {
    let options = CheckOptions {
        sync_require_tenant_stale: true,
        ..options()
    };
    let mut snapshot = snapshot("sync_state");
    assert!(evaluation(run(OnpremSyncStale, &snapshot, &options))
        .findings
        .is_empty());
    snapshot.organization = Ok(list("organization", "stale_sync").remove(0));
    let found = evaluation(run(OnpremSyncStale, &snapshot, &options)).findings;
    assert_eq!(found.len(), 2);
    snapshot.organization = Err(Unavailable::Throttled);
    assert_eq!(
        skip_reason(run(OnpremSyncStale, &snapshot, &options)),
        "throttled"
    );
}

#[test]
fn not_legal_adult_covers_each_classification_and_the_age_group_fallback() {
    let found = sorted_upns(NotLegalAdult, "age_groups", &options());
    let expected = [
        "minor.without.consent",
        "minor.without.consent.alt",
        "minor.with.consent",
        "minor.no.consent.required",
        "not.adult",
        "fallback.minor",
        "fallback.not.adult",
    ];
    assert_eq!(found, sorted(expected.to_vec()));
    let snapshot = snapshot("age_groups");
    let fallback = findings(NotLegalAdult, &snapshot)
        .into_iter()
        .find(|f| f.resource_name.starts_with("fallback.minor"))
        .unwrap();
    assert_eq!(fallback.details["basis"], "ageGroup");
}

#[test]
fn proxy_addresses_aliases_mode_ignores_moera_and_matching_primary() {
    let found = sorted_upns(ProxyAddressesConfigured, "proxy_addresses", &options());
    assert_eq!(found, sorted(vec!["custom.alias", "primary.differs"]));
    let snapshot = snapshot("proxy_addresses");
    let alias = findings(ProxyAddressesConfigured, &snapshot).remove(0);
    assert_eq!(alias.details["mode"], "aliases");
    assert_eq!(
        alias.details["configured_addresses"],
        json!(["smtp:john.smith@contoso.com"])
    );
}

#[test]
fn proxy_addresses_strict_and_any_non_primary_modes() {
    let strict = CheckOptions {
        proxy_addresses_mode: ProxyAddressMode::Strict,
        ..options()
    };
    let found = upns(ProxyAddressesConfigured, "proxy_addresses", &strict);
    assert_eq!(found.len(), 6, "all but the empty list: {found:?}");
    assert!(!found.contains(&"no.addresses".to_owned()));
    let non_primary = CheckOptions {
        proxy_addresses_mode: ProxyAddressMode::AnyNonPrimary,
        ..options()
    };
    let found = sorted_upns(ProxyAddressesConfigured, "proxy_addresses", &non_primary);
    let expected = [
        "primary.only",
        "custom.alias",
        "primary.differs",
        "sip.too",
        "spaced.primary",
        "moera.upper",
    ];
    assert_eq!(found, sorted(expected.to_vec()));
}

#[test]
fn account_disabled_fires_for_members_and_guests_but_not_unknown() {
    let found = sorted_upns(AccountDisabled, "account_state", &options());
    assert_eq!(found, sorted(vec!["disabled", "disabled.guest"]));
}

#[test]
fn excluded_users_produce_no_user_findings() {
    let snapshot = snapshot("account_state");
    let options = CheckOptions {
        exclude_users: vec![
            "DISABLED@contoso.com".to_owned(),
            user_id(&snapshot, "disabled.guest"),
        ],
        ..options()
    };
    assert!(evaluation(run(AccountDisabled, &snapshot, &options))
        .findings
        .is_empty());
}

fn with_methods(entries: Vec<(&str, Result<Vec<AuthMethod>, Unavailable>)>) -> TenantSnapshot {
    let mut snapshot = snapshot("mailbox_owners");
    let named: Vec<(
        crate::snapshot::UserId,
        Result<Vec<AuthMethod>, Unavailable>,
    )> = entries
        .into_iter()
        .map(|(nick, result)| (user_id(&snapshot, nick).into(), result))
        .collect();
    snapshot.auth_methods = Ok(named.into_iter().collect());
    snapshot
}

#[test]
fn the_method_checks_of_one_evaluation_share_one_unevaluated_list() {
    let snapshot = with_methods(vec![("alice", Ok(methods("fido2_mixed")))]);
    let ctx = EvalCtx {
        now: now(),
        options: &options(),
    };
    let outcomes = crate::checks::evaluate_releasing(snapshot.clone(), &ctx);
    let lists: Vec<&crate::checks::ResourceReasons> = outcomes
        .iter()
        .filter(|(id, _)| [Fido2Unattested, WhfbWeakKey, TapReusable, TapLongLived].contains(id))
        .map(|(_, outcome)| match outcome {
            Outcome::Evaluated(evaluation) => &evaluation.unevaluated,
            Outcome::Skipped { reason } => panic!("skipped: {reason}"),
        })
        .collect();
    assert_eq!(lists.len(), 4);
    let bob = user_id(&snapshot, "bob");
    assert_eq!(
        lists[0].get(&bob),
        Some("no_relevant_method_in_registration_report")
    );
    assert!(lists.iter().all(|list| list.is_shared_with(lists[0])));
}

#[test]
fn fido2_unattested_flags_not_attested_only_with_user_slash_method_ids() {
    let snapshot = with_methods(vec![("alice", Ok(methods("fido2_mixed")))]);
    let found = findings(Fido2Unattested, &snapshot);
    let alice = user_id(&snapshot, "alice");
    let ids: Vec<&str> = found.iter().map(|f| f.resource_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            format!("{alice}/_jpuR-TGZgk6aQCLF3BQjA2"),
            format!("{alice}/c3luY2VkLXBhc3NrZXk")
        ]
    );
    assert_eq!(found[0].resource_name, "alice@contoso.com");
    assert_eq!(found[1].details["passkey_type"], "synced");
    assert_eq!(found[0].details["model"], "USB key");
}

#[test]
fn fido2_synced_passkeys_can_be_excluded() {
    let snapshot = with_methods(vec![("alice", Ok(methods("fido2_mixed")))]);
    let options = CheckOptions {
        fido2_exclude_synced_passkeys: true,
        ..options()
    };
    let found = evaluation(run(Fido2Unattested, &snapshot, &options)).findings;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].details["passkey_type"], "deviceBound");
}

#[test]
fn fido2_reads_the_creation_date_time_alias() {
    let method = AuthMethod::from_graph(
        json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": "k1",
               "attestationLevel": "notAttested", "creationDateTime": "2020-08-10T06:44:09Z"}),
        None,
    )
    .unwrap();
    let snapshot = with_methods(vec![("bob", Ok(vec![method]))]);
    let found = findings(Fido2Unattested, &snapshot);
    assert_eq!(
        found[0].details["created_date_time"],
        "2020-08-10T06:44:09Z"
    );
}

#[test]
fn failed_users_go_to_failed_resources_and_absent_users_are_clean() {
    let snapshot = with_methods(vec![
        ("alice", Ok(methods("fido2_mixed"))),
        ("bob", Err(denied("UserAuthenticationMethod.Read.All"))),
    ]);
    let evaluation = evaluation(run(Fido2Unattested, &snapshot, &options()));
    assert_eq!(
        evaluation.failed_resources.iter().collect::<Vec<_>>(),
        [(
            user_id(&snapshot, "bob").as_str(),
            "permission_denied: UserAuthenticationMethod.Read.All"
        )]
    );
    assert!(evaluation
        .findings
        .iter()
        .all(|f| f.resource_name == "alice@contoso.com"));
}

#[test]
fn method_checks_skip_when_methods_are_unavailable_and_honour_exclusions() {
    let mut snapshot = with_methods(vec![("alice", Ok(methods("whfb_mixed")))]);
    let options = CheckOptions {
        exclude_users: vec!["alice@contoso.com".to_owned()],
        ..options()
    };
    assert!(evaluation(run(WhfbWeakKey, &snapshot, &options))
        .findings
        .is_empty());
    snapshot.auth_methods = Err(Unavailable::GraphError { status: 503 });
    for id in [Fido2Unattested, WhfbWeakKey, TapReusable, TapLongLived] {
        assert_eq!(
            skip_reason(run(id, &snapshot, &CheckOptions::default())),
            "graph_error 503"
        );
    }
}

#[test]
fn whfb_flags_weak_and_unknown_only_when_configured() {
    let snapshot = with_methods(vec![("bob", Ok(methods("whfb_mixed")))]);
    let found = findings(WhfbWeakKey, &snapshot);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].details["key_strength"], "weak");
    assert_eq!(found[0].details["display_name"], "Old Desktop");
    let options = CheckOptions {
        whfb_flag_unknown: true,
        ..options()
    };
    assert_eq!(
        evaluation(run(WhfbWeakKey, &snapshot, &options))
            .findings
            .len(),
        2
    );
}

fn tap_snapshot() -> TenantSnapshot {
    with_methods(vec![
        ("alice", Ok(methods("tap_reusable_long"))),
        ("bob", Ok(methods("tap_once_short"))),
        ("carol", Ok(methods("tap_unusable"))),
        ("svc.scanner", Ok(methods("tap_at_limit"))),
    ])
}

#[test]
fn tap_reusable_fires_for_usable_multi_use_passes() {
    let snapshot = tap_snapshot();
    let found = findings(TapReusable, &snapshot);
    assert_eq!(names(&found), ["alice@contoso.com"]);
    assert_eq!(found[0].details["is_usable_once"], false);
    let all = CheckOptions {
        tap_usable_only: false,
        ..options()
    };
    let found = evaluation(run(TapReusable, &snapshot, &all)).findings;
    assert_eq!(
        found.len(),
        2,
        "the expired pass counts when usable_only is off"
    );
}

#[test]
fn tap_long_lived_uses_a_strict_limit_and_usable_passes() {
    let snapshot = tap_snapshot();
    let found = findings(TapLongLived, &snapshot);
    assert_eq!(names(&found), ["alice@contoso.com"]);
    assert_eq!(found[0].details["lifetime_in_minutes"], 1440);
    assert_eq!(found[0].details["max_lifetime_minutes"], 480);
    let shorter = CheckOptions {
        tap_max_lifetime_minutes: 30,
        ..options()
    };
    let found = evaluation(run(TapLongLived, &snapshot, &shorter)).findings;
    assert_eq!(found.len(), 3);
}

#[test]
fn tap_details_never_carry_the_pass() {
    let snapshot = tap_snapshot();
    for id in [TapReusable, TapLongLived] {
        for finding in findings(id, &snapshot) {
            let text = serde_json::to_string(&finding).unwrap();
            assert!(!text.contains("S3cr3t-Pass-Value"), "{text}");
            assert!(!text.contains("temporaryAccessPass"), "{text}");
        }
    }
}

#[test]
fn listed_users_whose_methods_were_not_read_are_unevaluated_not_clean() {
    let not_readable = Unavailable::NotReadable {
        reason: "user_not_found".to_owned(),
    };
    let snapshot = with_methods(vec![
        ("alice", Ok(methods("fido2_mixed"))),
        ("bob", Err(not_readable)),
    ]);
    let evaluation = evaluation(run(Fido2Unattested, &snapshot, &options()));
    assert_eq!(evaluation.findings.len(), 2);
    assert!(evaluation.failed_resources.is_empty());
    let unevaluated = &evaluation.unevaluated;
    let alice = user_id(&snapshot, "alice");
    let bob = user_id(&snapshot, "bob");
    assert_eq!(unevaluated.get(&bob), Some("user_not_found"));
    assert!(!unevaluated.contains_key(&alice));
    let listed = snapshot.users.as_ref().unwrap();
    for other in listed.iter().filter(|u| *u.id != *alice && *u.id != *bob) {
        assert_eq!(
            unevaluated.get(&other.id),
            Some("no_relevant_method_in_registration_report"),
            "{}",
            other.name()
        );
    }
}
