//! Collection against graph-sim where graph-sim answers as Microsoft documents Graph: the
//! registration report's current method labels (userRegistrationDetails, v1.0 and beta), an
//! unknown label, a report lagging behind the methods, and hybrid users whose mailbox is on
//! premises (404 `MailboxNotEnabledForRESTAPI`).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

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
    methods.into_keys().collect()
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
