//! The Exchange-backed Graph paths: calendar permissions, inbox rules and mailbox settings,
//! with Exchange's own errors (`ErrorInvalidUser`, `MailboxNotEnabledForRESTAPI`,
//! `ErrorAccessDenied` "Access to OData is disabled.").

use serde_json::{json, Value};

use super::odata::{self, Query};
use super::routes::Resource;
use super::GraphError;
use crate::schema_props as props;
use crate::state::TenantData;

/// Answers a mailbox path for an existing, mailbox-enabled, not excluded user.
pub(crate) fn answer(
    data: &TenantData,
    resource: &Resource,
    query: &Query,
    base: &str,
) -> Result<Value, GraphError> {
    let key = resource.user_key().unwrap_or_default();
    let user = data.user(key).ok_or_else(|| {
        GraphError::new(
            404,
            "ErrorInvalidUser",
            format!("The requested user '{key}' is invalid."),
        )
    })?;
    let id = user.get("id").and_then(Value::as_str).unwrap_or(key);
    if data.file.faults.denied_mailboxes.iter().any(|d| d == id) {
        return Err(GraphError::new(
            403,
            "ErrorAccessDenied",
            "Access to OData is disabled.".into(),
        ));
    }
    if !data.index.mailboxes.contains(id) {
        return Err(GraphError::new(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.".into(),
        ));
    }
    match resource {
        Resource::CalendarPermissions(_) => {
            let select = odata::resolve_select(
                query,
                props::CALENDAR_PERMISSION,
                "microsoft.graph.calendarPermission",
            )?;
            let default = [default_calendar_permission()];
            let list = data
                .file
                .calendar_permissions
                .get(id)
                .map(Vec::as_slice)
                .unwrap_or(&default);
            Ok(json!({
                "@odata.context": format!("{base}/v1.0/$metadata#users('{id}')/calendar/calendarPermissions"),
                "value": list.iter().map(|p| odata::project(p, select.as_deref())).collect::<Vec<_>>(),
            }))
        }
        Resource::MessageRules(_) => {
            let select =
                odata::resolve_select(query, props::MESSAGE_RULE, "microsoft.graph.messageRule")?;
            let list = data
                .file
                .message_rules
                .get(id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            Ok(json!({
                "@odata.context": format!("{base}/v1.0/$metadata#users('{id}')/mailFolders('inbox')/messageRules"),
                "value": list.iter().map(|r| odata::project(r, select.as_deref())).collect::<Vec<_>>(),
            }))
        }
        _ => {
            let mut settings = data
                .file
                .mailbox_settings
                .get(id)
                .cloned()
                .unwrap_or_else(default_mailbox_settings);
            if let Some(map) = settings.as_object_mut() {
                map.insert(
                    "@odata.context".into(),
                    json!(format!(
                        "{base}/v1.0/$metadata#users('{id}')/mailboxSettings"
                    )),
                );
            }
            Ok(settings)
        }
    }
}

/// The "My Organization" entry every primary calendar has.
pub(crate) fn default_calendar_permission() -> Value {
    json!({
        "id": "RGVmYXVsdA==",
        "isRemovable": false,
        "isInsideOrganization": true,
        "role": "freeBusyRead",
        "allowedRoles": ["none", "freeBusyRead", "limitedRead", "read", "write"],
        "emailAddress": {"name": "My Organization", "address": null},
    })
}

/// Mailbox settings of an ordinary user mailbox.
pub(crate) fn default_mailbox_settings() -> Value {
    json!({
        "archiveFolder": null,
        "timeZone": "UTC",
        "dateFormat": "yyyy-MM-dd",
        "timeFormat": "HH:mm",
        "userPurpose": "user",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
        "automaticRepliesSetting": {"status": "disabled", "externalAudience": "none",
            "internalReplyMessage": "", "externalReplyMessage": "",
            "scheduledStartDateTime": {"dateTime": "2024-01-01T00:00:00.0000000", "timeZone": "UTC"},
            "scheduledEndDateTime": {"dateTime": "2024-01-02T00:00:00.0000000", "timeZone": "UTC"}},
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
            "timeZone": {"name": "UTC"}},
    })
}
