//! Tenant-level collections: `/organization`, `/domains`, `/applications`,
//! `/servicePrincipals`, with `$select` lists and `$top=999` (findings-spec.md section 2.2),
//! and the TXT answers for the domains.

use crate::checks::domains::dns_names_needed;
use crate::checks::CheckOptions;
use crate::config::DnsConfig;
use crate::dns::TxtResolver;
use crate::graph::paging::collect_all;
use crate::graph::{GraphClient, Pool};
use crate::snapshot::{
    Application, DnsAnswers, Domain, Organization, Section, ServicePrincipal, Unavailable,
};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// `$select` of `/users` (findings-spec.md section 2.2).
pub const USER_SELECT: &str = "id,userPrincipalName,displayName,mail,userType,creationType,\
accountEnabled,passwordPolicies,lastPasswordChangeDateTime,onPremisesSyncEnabled,\
onPremisesLastSyncDateTime,onPremisesImmutableId,onPremisesProvisioningErrors,ageGroup,\
consentProvidedForMinor,legalAgeGroupClassification,proxyAddresses,createdDateTime";

const ORGANIZATION: &str =
    "/organization?$select=id,displayName,onPremisesSyncEnabled,onPremisesLastSyncDateTime";
const DOMAINS: &str =
    "/domains?$select=id,isVerified,isDefault,isInitial,authenticationType,supportedServices";
const APPLICATIONS: &str = "/applications?$select=id,appId,displayName,publisherDomain,\
signInAudience,verifiedPublisher,certification,disabledByMicrosoftStatus,passwordCredentials,\
keyCredentials&$top=999";
const SERVICE_PRINCIPALS: &str = "/servicePrincipals?$select=id,appId,displayName,\
appDisplayName,servicePrincipalType,appOwnerOrganizationId,accountEnabled,verifiedPublisher,\
disabledByMicrosoftStatus,appRoleAssignmentRequired&$top=999";

/// DNS lookups in flight at once.
const DNS_CONCURRENCY: usize = 16;
/// Rounds of "names still needed" (SPF include chains are at most ten deep).
const DNS_ROUNDS: usize = 12;

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
    list(client, APPLICATIONS, "Application.Read.All").await
}

/// Every service principal of the tenant.
pub async fn service_principals(client: &GraphClient) -> Section<Vec<ServicePrincipal>> {
    list(client, SERVICE_PRINCIPALS, "Application.Read.All").await
}

/// TXT answers for the checked domains, their `_dmarc.` names, SPF include and redirect
/// targets and organizational-domain fallbacks, as the SPF/DMARC checks ask for them
/// ([`dns_names_needed`]); nothing when the domains did not arrive.
pub async fn dns_answers(
    config: &DnsConfig,
    options: &CheckOptions,
    domains: &Section<Vec<Domain>>,
    cancel: &CancellationToken,
) -> DnsAnswers {
    let Ok(domains) = domains else {
        return DnsAnswers::new();
    };
    let mut answers = DnsAnswers::new();
    let resolver = match TxtResolver::new(config) {
        Ok(r) => r,
        Err(err) => {
            tracing::warn!(error = %err, "No DNS resolver");
            for name in dns_names_needed(domains, options, &answers) {
                let failure = Unavailable::DnsFailure {
                    name: name.clone(),
                    detail: "no_resolver".to_owned(),
                };
                answers.insert(name, Err(failure));
            }
            return answers;
        }
    };
    for _ in 0..DNS_ROUNDS {
        let names = dns_names_needed(domains, options, &answers);
        if names.is_empty() || cancel.is_cancelled() {
            break;
        }
        let resolved: Vec<_> = futures::stream::iter(names)
            .map(|name| {
                let resolver = &resolver;
                async move {
                    let answer = resolver.txt(&name).await;
                    (name, answer)
                }
            })
            .buffer_unordered(DNS_CONCURRENCY)
            .collect()
            .await;
        answers.extend(resolved);
    }
    answers
}
