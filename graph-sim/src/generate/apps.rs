//! Applications and service principals: Microsoft first-party, the tenant's own
//! registrations, third-party multi-tenant apps and managed identities.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::{guid, Context};
use crate::tenant::TenantFile;

/// Microsoft Services tenant (owner of most first-party apps).
pub const MICROSOFT_SERVICES_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
/// Microsoft's corporate tenant (owner of some first-party apps).
pub const MICROSOFT_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

const FIRST_PARTY: &[(&str, &str, &str)] = &[
    (
        "00000003-0000-0000-c000-000000000000",
        "Microsoft Graph",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "00000003-0000-0ff1-ce00-000000000000",
        "Office 365 SharePoint Online",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "00000004-0000-0ff1-ce00-000000000000",
        "Skype for Business Online",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "00000002-0000-0000-c000-000000000000",
        "Windows Azure Active Directory",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "0000000a-0000-0000-c000-000000000000",
        "Microsoft Intune",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "00000009-0000-0000-c000-000000000000",
        "Power BI Service",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        "Microsoft Teams",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "c5393580-f805-4401-95e8-94b7a6ef2fc2",
        "Office 365 Management APIs",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        "Azure Portal",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "Microsoft Azure CLI",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "1b730954-1685-4b74-9bfd-dac224a7b894",
        "Azure Active Directory PowerShell",
        MICROSOFT_SERVICES_TENANT,
    ),
    (
        "14d82eec-204b-4c2f-b7e8-296a70dab67e",
        "Microsoft Graph Command Line Tools",
        MICROSOFT_TENANT,
    ),
    (
        "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
        "Graph Explorer",
        MICROSOFT_TENANT,
    ),
];

const VENDORS: &[&str] = &[
    "Zoom",
    "Slack",
    "DocuSign",
    "Salesforce",
    "Adobe Sign",
    "Miro",
    "Asana",
    "Trello",
    "Dropbox",
    "Calendly",
    "Grammarly",
    "MailHelper Pro",
    "Smartsheet",
    "Box",
    "Notion",
];

/// Share of tenant apps certified by Microsoft (half of them expire within 90 days).
pub const APP_CERTIFIED: f64 = 0.10;
/// Share of tenant apps only publisher-attested.
pub const APP_ATTESTED_ONLY: f64 = 0.15;
/// Share of tenant apps disabled by Microsoft.
pub const APP_DISABLED: f64 = 0.02;
/// Share of third-party service principals with a verified publisher.
pub const THIRD_PARTY_VERIFIED: f64 = 0.60;
/// Share of third-party service principals disabled by Microsoft.
pub const THIRD_PARTY_DISABLED: f64 = 0.03;

fn service_principal(
    id: &str,
    app_id: &str,
    name: &str,
    owner: Option<&str>,
    kind: &str,
    publisher: Value,
    disabled: Option<&str>,
) -> Value {
    json!({
        "id": id, "deletedDateTime": null, "accountEnabled": true, "addIns": [], "alternativeNames": [],
        "appDescription": null, "appDisplayName": name, "appId": app_id, "applicationTemplateId": null,
        "appOwnerOrganizationId": owner, "appRoleAssignmentRequired": false, "appRoles": [],
        "description": null, "disabledByMicrosoftStatus": disabled, "displayName": name, "homepage": null,
        "info": {"termsOfServiceUrl": null, "supportUrl": null, "privacyStatementUrl": null, "marketingUrl": null, "logoUrl": null},
        "keyCredentials": [], "loginUrl": null, "logoutUrl": null, "notes": null, "notificationEmailAddresses": [],
        "oauth2PermissionScopes": [], "passwordCredentials": [], "preferredSingleSignOnMode": null,
        "replyUrls": [], "resourceSpecificApplicationPermissions": [], "servicePrincipalNames": [app_id],
        "servicePrincipalType": kind, "signInAudience": if kind == "Application" { json!("AzureADMultipleOrgs") } else { Value::Null },
        "tags": [], "tokenEncryptionKeyId": null, "verifiedPublisher": publisher,
    })
}

fn no_publisher() -> Value {
    json!({"displayName": null, "verifiedPublisherId": null, "addedDateTime": null})
}

/// Fills applications and service principals.
pub(crate) fn generate(
    tenant: &mut TenantFile,
    context: &Context,
    users: usize,
    rng: &mut ChaCha8Rng,
) {
    for (app_id, name, owner) in FIRST_PARTY {
        let id = guid(rng);
        tenant.service_principals.push(service_principal(
            &id,
            app_id,
            name,
            Some(owner),
            "Application",
            no_publisher(),
            None,
        ));
    }
    for number in 0..(users / 200).max(5) {
        let (app, sp) = tenant_app(context, number, rng);
        tenant.applications.push(app);
        tenant.service_principals.push(sp);
    }
    let vendor_tenants: Vec<String> = (0..(users / 300).max(4)).map(|_| guid(rng)).collect();
    for number in 0..(users / 100).max(8) {
        let owner = vendor_tenants
            .get(rng.gen_range(0..vendor_tenants.len()))
            .cloned()
            .unwrap_or_default();
        let vendor = VENDORS
            .get(number % VENDORS.len())
            .copied()
            .unwrap_or("Vendor");
        let name = if number < VENDORS.len() {
            vendor.to_string()
        } else {
            format!("{vendor} Connector {number}")
        };
        let publisher = if rng.gen_bool(THIRD_PARTY_VERIFIED) {
            json!({"displayName": vendor, "verifiedPublisherId": rng.gen_range(1_000_000..9_999_999).to_string(), "addedDateTime": context.days_ago(rng.gen_range(30.0..900.0))})
        } else {
            no_publisher()
        };
        let disabled = rng
            .gen_bool(THIRD_PARTY_DISABLED)
            .then_some("DisabledDueToViolationOfServicesAgreement");
        let (id, app_id) = (guid(rng), guid(rng));
        tenant.service_principals.push(service_principal(
            &id,
            &app_id,
            &name,
            Some(&owner),
            "Application",
            publisher,
            disabled,
        ));
    }
    for number in 0..(users / 1000).max(2) {
        let (id, app_id) = (guid(rng), guid(rng));
        tenant.service_principals.push(service_principal(
            &id,
            &app_id,
            &format!("vm-backup-{number}"),
            None,
            "ManagedIdentity",
            no_publisher(),
            None,
        ));
    }
}

fn tenant_app(context: &Context, number: usize, rng: &mut ChaCha8Rng) -> (Value, Value) {
    let (id, app_id, sp_id) = (guid(rng), guid(rng), guid(rng));
    let name = format!(
        "{} {}",
        context.org,
        [
            "HR Portal",
            "Expenses",
            "Intranet",
            "CRM Sync",
            "Build Bot",
            "Reporting"
        ]
        .get(number % 6)
        .copied()
        .unwrap_or("App")
    );
    let roll: f64 = rng.gen();
    let certification = if roll < APP_CERTIFIED {
        let expires_in = if rng.gen_bool(0.5) {
            rng.gen_range(5.0..89.0)
        } else {
            rng.gen_range(120.0..700.0)
        };
        json!({"certificationDetailsUrl": format!("https://learn.microsoft.com/microsoft-365-app-certification/azure/{app_id}"), "certificationExpirationDateTime": context.days_ago(-expires_in), "isCertifiedByMicrosoft": true, "isPublisherAttested": true, "lastCertificationDateTime": context.days_ago(365.0 - expires_in)})
    } else if roll < APP_CERTIFIED + APP_ATTESTED_ONLY {
        json!({"certificationDetailsUrl": null, "certificationExpirationDateTime": null, "isCertifiedByMicrosoft": false, "isPublisherAttested": true, "lastCertificationDateTime": context.days_ago(200.0)})
    } else {
        Value::Null
    };
    let disabled = rng
        .gen_bool(APP_DISABLED)
        .then_some("DisabledDueToViolationOfServicesAgreement");
    let app = json!({
        "id": id, "deletedDateTime": null, "addIns": [], "api": null, "appId": app_id, "applicationTemplateId": null,
        "appRoles": [], "certification": certification, "createdByAppId": null, "createdDateTime": context.days_ago(rng.gen_range(30.0..1500.0)),
        "defaultRedirectUri": null, "description": null, "disabledByMicrosoftStatus": disabled, "displayName": name,
        "groupMembershipClaims": null, "identifierUris": [], "info": null, "isDeviceOnlyAuthSupported": null,
        "isFallbackPublicClient": false, "keyCredentials": [], "notes": null, "oauth2RequirePostResponse": false,
        "optionalClaims": null, "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [], "publicClient": {"redirectUris": []}, "publisherDomain": context.primary_domain(),
        "requiredResourceAccess": [], "serviceManagementReference": null, "signInAudience": "AzureADMyOrg", "tags": [],
        "tokenEncryptionKeyId": null, "verifiedPublisher": no_publisher(),
    });
    let sp = service_principal(
        &sp_id,
        &app_id,
        &name,
        Some(&context.tenant_id),
        "Application",
        no_publisher(),
        disabled,
    );
    (app, sp)
}
