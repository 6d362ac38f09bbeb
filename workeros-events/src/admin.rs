//! Who manages webhooks and flows (an admin of the tenant), and the subject the engines act as
//! when they check filters and write (`workeros:<engine>`, an admin of the event's tenant).

use crate::EventsError;

/// The tenant of an admin managing `what` (webhooks, flows); 401 anonymous, 403 others.
pub(crate) fn admin_tenant<'a>(
    subject: &'a workeros_core::Subject,
    what: &str,
) -> Result<&'a str, EventsError> {
    if subject.is_anonymous() {
        return Err(EventsError::Anonymous);
    }
    if !subject.is_admin() {
        return Err(EventsError::Forbidden(format!(
            "managing {what} needs the admin role"
        )));
    }
    Ok(subject.tenant_id())
}

/// The subject `who` (webhooks, flows, functions) checks filters and writes as: an admin of
/// `tenant`, named `workeros:<who>`.
pub(crate) fn system_subject(who: &str, tenant: &str) -> workeros_core::Subject {
    workeros_core::Subject::user(
        workeros_core::User::new(format!("workeros:{who}"))
            .with_roles([workeros_core::roles::ADMIN]),
    )
    .with_tenant(tenant)
}
