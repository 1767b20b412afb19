//! Collection against graph-sim where graph-sim answers as Microsoft documents Graph: the
//! registration report's current method labels (userRegistrationDetails, v1.0 and beta), an
//! unknown label, a report lagging behind the methods, and hybrid users whose mailbox is on
//! premises (404 `MailboxNotEnabledForRESTAPI`).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::MethodLabels;
use m365_posture::snapshot::Unavailable;
use serde_json::json;
use support::*;

const ADELE: &str = "a1000000-0000-4000-8000-000000000001";
const BOB: &str = "a1000000-0000-4000-8000-000000000002";
const CAROL: &str = "a1000000-0000-4000-8000-000000000003";
const ERIN: &str = "a1000000-0000-4000-8000-000000000005";

/// Carol's only passkey lives in Microsoft Authenticator (its AAGUID for iOS).
fn carol_with_authenticator_passkey() -> graph_sim::TenantFile {
    let mut tenant = contoso();
    tenant.authentication_methods.insert(
        CAROL.into(),
        vec![json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
            "id": "carol-passkey", "displayName": "Authenticator - iOS",
            "aaGuid": "90a3ccdf-635c-4729-a248-9b709135078f", "model": "Microsoft Authenticator - iOS",
            "attestationLevel": "notAttested", "passkeyType": "deviceBound",
            "createdDateTime": "2024-05-01T10:00:00Z"})],
    );
    tenant
}

async fn methods_read_for(tenant: graph_sim::TenantFile) -> Vec<String> {
    let sim = sim(tenant).await;
    let files = Files::new();
    let report = collect(&context(config(&sim, files.secret()))).await;
    assert_eq!(report.error, None);
    let methods = report.snapshot.auth_methods.unwrap();
    assert!(methods.values().all(Result::is_ok), "{methods:?}");
    methods.into_keys().map(|id| id.to_string()).collect()
}

#[tokio::test]
async fn a_passkey_in_authenticator_gets_its_methods_read() {
    let tenant = carol_with_authenticator_passkey();
    let read = methods_read_for(tenant).await;
    assert!(read.contains(&CAROL.to_owned()), "{read:?}");
}

#[tokio::test]
async fn fido2_labels_of_older_reports_still_count() {
    let mut tenant = carol_with_authenticator_passkey();
    tenant.registration_report.labels = MethodLabels::Fido2;
    let read = methods_read_for(tenant).await;
    assert!(read.contains(&CAROL.to_owned()) && read.contains(&ADELE.to_owned()));
}

#[tokio::test]
async fn an_unknown_label_counts_as_relevant_and_known_others_do_not() {
    let mut tenant = contoso();
    let lagging = &mut tenant.registration_report.lagging;
    lagging.insert(CAROL.into(), vec!["passKeyOfSomeFutureKind".into()]);
    lagging.insert(
        BOB.into(),
        vec!["email".into(), "microsoftAuthenticatorPush".into()],
    );
    let read = methods_read_for(tenant).await;
    assert!(read.contains(&CAROL.to_owned()), "{read:?}");
    assert!(!read.contains(&BOB.to_owned()), "{read:?}");
}

#[tokio::test]
async fn a_hybrid_mailbox_is_unreadable_not_empty() {
    let mut tenant = contoso();
    // Erin is synced with `mail`; her mailbox is on premises (not in Exchange Online).
    tenant.mailboxes.retain(|id| id != ERIN);
    if let Some(erin) = tenant.user_mut(ERIN) {
        erin["onPremisesSyncEnabled"] = json!(true);
    }
    let sim = sim(tenant).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let snap = collect(&ctx).await.snapshot;
    let unreadable: Result<(), _> = Err(Unavailable::NotReadable {
        reason: "mailbox_not_enabled_for_rest_api".into(),
    });
    let rules = snap.message_rules.as_ref().unwrap();
    assert_eq!(
        rules.get(ERIN).map(Result::as_ref).and_then(Result::err),
        unreadable.as_ref().err()
    );
    let calendar = snap.calendar_permissions.as_ref().unwrap();
    assert_eq!(
        calendar.get(ERIN).map(Result::as_ref).and_then(Result::err),
        unreadable.as_ref().err()
    );
    assert!(calendar.get(ADELE).is_some_and(Result::is_ok));
    let gauge = ctx
        .metrics
        .mailboxes_unreadable
        .with_label_values(&["contoso", "mailbox_not_enabled_for_rest_api"]);
    assert_eq!(gauge.get(), 1);
}

/// A Microsoft app whose service principal is owned by AME is first-party: no `app.*` check
/// reports it, collected from graph-sim and evaluated as the daemon does.
#[tokio::test]
async fn a_microsoft_app_owned_by_ame_raises_nothing() {
    use m365_posture::checks::{evaluate_all, CheckOptions, EvalCtx, Outcome};
    let mut tenant = contoso();
    let ame_sp = "5e1b8c9a-0000-4000-8000-00000000a0e1";
    tenant.service_principals.push(json!({
        "id": ame_sp, "appId": "05a65629-4c1b-48c1-a78b-804c4abdd4af",
        "displayName": "Microsoft Defender for Cloud Apps - Session Controls",
        "appDisplayName": "Microsoft Defender for Cloud Apps - Session Controls",
        "servicePrincipalType": "Application",
        "appOwnerOrganizationId": "33e01921-4d64-4f8c-a055-5bdaffd5e33d",
        "accountEnabled": true, "verifiedPublisher": {"displayName": null, "verifiedPublisherId": null},
        "disabledByMicrosoftStatus": null, "tags": []
    }));
    let sim = sim(tenant).await;
    let files = Files::new();
    let snap = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    assert!(snap
        .service_principals
        .as_ref()
        .unwrap()
        .iter()
        .any(|sp| sp.id == ame_sp));
    let options = CheckOptions::default();
    let ctx = EvalCtx {
        now: m365_posture::scan::clock_now(),
        options: &options,
    };
    let mut app_checks = 0;
    for (id, outcome) in evaluate_all(&snap, &ctx) {
        let Outcome::Evaluated(evaluation) = outcome else {
            continue;
        };
        if id.as_str().starts_with("app.") {
            app_checks += 1;
            assert!(
                evaluation.findings.iter().all(|f| f.resource_id != ame_sp),
                "{id}"
            );
        }
    }
    assert_eq!(app_checks, 4);
}

/// Delegated collection with the refresh token of the user who approved the device code.
async fn delegated_calendars(signed_in: &str) -> m365_posture::snapshot::TenantSnapshot {
    use m365_posture::commands::consent::consent;
    use m365_posture::config::TenantAuth;
    let sim = sim(contoso()).await;
    sim.set_device_code_interval(1);
    let config = config(&sim, TenantAuth::Delegated);
    let store = std::sync::Arc::new(MemoryTokens::default());
    let approve = |prompt: &m365_posture::graph::device_code::DevicePrompt| {
        assert!(sim.approve_device_code_as(&prompt.user_code, signed_in));
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    consent(&config, "contoso", store.as_ref(), approve, &cancel)
        .await
        .unwrap();
    let report = collect(&context_with(config, store)).await;
    assert_eq!(report.error, None);
    let asked = sim
        .stats()
        .total_to("/v1.0/users/{id}/calendar/calendarPermissions");
    assert!(asked <= 1, "only the signed-in user's calendar is read");
    report.snapshot
}

/// Graph answers a delegate's calendar-permission list with an empty collection: in delegated
/// mode only the signed-in user's own calendar is evaluated, the others are unevaluated.
#[tokio::test]
async fn delegated_calendars_of_others_are_unevaluated_not_empty() {
    let snap = delegated_calendars(ADELE).await;
    let calendar = snap.calendar_permissions.unwrap();
    assert_eq!(calendar[ADELE].as_ref().map(Vec::len), Ok(2));
    let not_owner = Unavailable::NotReadable {
        reason: "delegated_not_calendar_owner".into(),
    };
    for other in [BOB, CAROL, ERIN] {
        assert_eq!(calendar[other].as_ref().err(), Some(&not_owner), "{other}");
    }
}

#[tokio::test]
async fn delegated_calendar_check_is_skipped_without_the_owners_calendar() {
    use m365_posture::checks::{evaluate, CheckOptions, EvalCtx, Outcome};
    use m365_posture::findings::FindingId;
    // The guest has no mailbox here, so no calendar the token may list is read.
    let guest = "a1000000-0000-4000-8000-000000000004";
    let snap = delegated_calendars(guest).await;
    let options = CheckOptions::default();
    let ctx = EvalCtx {
        now: m365_posture::scan::clock_now(),
        options: &options,
    };
    match evaluate(FindingId::CalendarSharedExternally, &snap, &ctx) {
        Outcome::Skipped { reason } => {
            assert!(
                reason.starts_with("not_applicable: delegated mode"),
                "{reason}"
            )
        }
        other => panic!("expected a skip, got {other:?}"),
    }
}
