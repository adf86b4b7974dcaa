//! The customer portal's door into the API. So far: portal sessions. The operator
//! mints a one-time link for an account (`POST /admin/v1/accounts/{id}/portal-sessions`);
//! the portal page redeems it once (`POST /portal/api/session`) for a credential it
//! presents as a bearer token on the customer API, which then acts for that account
//! (read-only sessions may only read: see `extract::auth`). The pages themselves are
//! not built yet (issue 13).

pub mod sessions;
