//! Tenant-level collections: `/organization`, `/domains`, `/applications`,
//! `/servicePrincipals`, with `$select` lists and `$top=999` (findings-spec.md section 2.2).
//! The DNS answers for the domains are in [`super::dns`].

use crate::graph::paging::collect_all;
use crate::graph::{GraphClient, Pool};
use crate::snapshot::{Application, Domain, Organization, Section, ServicePrincipal, Unavailable};
use serde::de::DeserializeOwned;

/// The permission the application and service principal sections need.
pub const APPLICATION_PERMISSION: &str = "Application.Read.All";

/// `$select` of `/users` (findings-spec.md section 2.2).
pub const USER_SELECT: &str = "id,userPrincipalName,displayName,mail,userType,creationType,\
accountEnabled,passwordPolicies,lastPasswordChangeDateTime,onPremisesSyncEnabled,\
onPremisesLastSyncDateTime,onPremisesImmutableId,onPremisesProvisioningErrors,ageGroup,\
consentProvidedForMinor,legalAgeGroupClassification,proxyAddresses,createdDateTime";

const ORGANIZATION: &str =
    "/organization?$select=id,displayName,onPremisesSyncEnabled,onPremisesLastSyncDateTime";
const DOMAINS: &str =
    "/domains?$select=id,isVerified,isDefault,isInitial,authenticationType,supportedServices";
/// `$select` of `/applications` (and `/applications/delta`).
pub const APPLICATION_SELECT: &str = "id,appId,displayName,publisherDomain,signInAudience,\
verifiedPublisher,certification,disabledByMicrosoftStatus,passwordCredentials,keyCredentials";
/// `$select` of `/servicePrincipals` (and `/servicePrincipals/delta`).
pub const SERVICE_PRINCIPAL_SELECT: &str = "id,appId,displayName,appDisplayName,\
servicePrincipalType,appOwnerOrganizationId,accountEnabled,verifiedPublisher,\
disabledByMicrosoftStatus,appRoleAssignmentRequired";

async fn list<T: DeserializeOwned>(
    client: &GraphClient,
    relative: &str,
    permission: &str,
) -> Section<Vec<T>> {
    collect_all(
        client,
        client.url(relative),
        Pool::Directory,
        serde_json::from_value,
    )
    .await
    .map_err(|e| e.to_unavailable(permission))
}

/// The tenant's organization object.
pub async fn organization(client: &GraphClient) -> Section<Organization> {
    let mut orgs: Vec<Organization> = list(client, ORGANIZATION, "Organization.Read.All").await?;
    orgs.pop().ok_or_else(|| Unavailable::Malformed {
        detail: "organization list is empty".to_owned(),
    })
}

/// Every domain of the tenant.
pub async fn domains(client: &GraphClient) -> Section<Vec<Domain>> {
    list(client, DOMAINS, "Domain.Read.All").await
}

/// Every application registration of the tenant.
pub async fn applications(client: &GraphClient) -> Section<Vec<Application>> {
    let relative = format!("/applications?$select={APPLICATION_SELECT}&$top=999");
    list(client, &relative, APPLICATION_PERMISSION).await
}

/// Every service principal of the tenant.
pub async fn service_principals(client: &GraphClient) -> Section<Vec<ServicePrincipal>> {
    let relative = format!("/servicePrincipals?$select={SERVICE_PRINCIPAL_SELECT}&$top=999");
    list(client, &relative, APPLICATION_PERMISSION).await
}
