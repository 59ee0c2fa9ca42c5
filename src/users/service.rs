//! Signing in, and a creator's team: users made by the platform owner or invited by an
//! owner, links that set a password (an invite, a reset), roles, removal. Every change is
//! audited. Sign-in is rate limited per account and per client address before any
//! password is checked, and answers the same whether the email is unknown or the password
//! wrong.

use std::net::IpAddr;
use std::num::NonZeroU32;

use base64::Engine;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;

use crate::audit::model::Who;
use crate::clock::SharedClock;
use crate::config::DashboardConfig;
use crate::error::ApiError;
use crate::keys::material::hash_hex;
use crate::outbox::model::{announcement, new_id, DASHBOARD_LINK};
use crate::store::outbox::Announcement;
use crate::store::people::{LinkRow, TeamChange, UserRow};
use crate::store::{Store, StoreError};
use crate::usage::period::rfc3339;
use crate::users::model::{check_password, parse_email, Role, UserView};
use crate::users::passwords;

/// How long an invite, and a password reset, can be used.
const INVITE_SECS: i64 = 7 * 86_400;
const RESET_SECS: i64 = 3_600;
/// Keyed limiters forget idle keys when they hold more than this many.
const LIMITER_KEYS: usize = 10_000;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Invite,
    Reset,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Invite => "invite",
            LinkPurpose::Reset => "reset",
        }
    }

    fn lifetime(self) -> i64 {
        match self {
            LinkPurpose::Invite => INVITE_SECS,
            LinkPurpose::Reset => RESET_SECS,
        }
    }
}

pub struct Users {
    store: Store,
    clock: SharedClock,
    /// Links go by email too (a Resend key is set).
    email_enabled: bool,
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

fn too_many_attempts() -> ApiError {
    let mut refused = ApiError::rate_limited(60);
    refused.message = "too many sign-in attempts; wait a minute and try again".into();
    refused
}

pub fn wrong_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "the email or the password is wrong")
}

impl Users {
    pub fn new(
        store: Store,
        clock: SharedClock,
        config: &DashboardConfig,
        email_enabled: bool,
    ) -> Users {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Users {
            store,
            clock,
            email_enabled,
            per_account: RateLimiter::keyed(quota(config.sign_ins_per_account_per_minute)),
            per_address: RateLimiter::keyed(quota(config.sign_ins_per_address_per_minute)),
        }
    }

    /// The user whose email and password these are. Refused with 429 past the attempts
    /// allowed for the account or the address, whatever the password.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<UserRow, ApiError> {
        let email = parse_email(email).map_err(|_| wrong_credentials())?;
        self.admit(&email, addr)?;
        let user = self.store.user_by_email(&email).await?;
        let stored = user.as_ref().and_then(|user| user.password_hash.clone());
        if passwords::verify(password.to_string(), stored).await? {
            user.ok_or_else(wrong_credentials)
        } else {
            Err(wrong_credentials())
        }
    }

    /// Counts a sign-in attempt for `account` from `addr`: 429 past either's quota.
    pub fn admit(&self, account: &str, addr: Option<IpAddr>) -> Result<(), ApiError> {
        self.admit_address(addr)?;
        if self.per_account.check_key(&account.to_string()).is_err() {
            return Err(too_many_attempts());
        }
        Ok(())
    }

    /// Counts an attempt from `addr` (a sign-in, a password link, the admin token): 429
    /// past its quota.
    pub fn admit_address(&self, addr: Option<IpAddr>) -> Result<(), ApiError> {
        if self.per_account.len() > LIMITER_KEYS || self.per_address.len() > LIMITER_KEYS {
            self.per_account.retain_recent();
            self.per_address.retain_recent();
        }
        match addr {
            Some(addr) if self.per_address.check_key(&addr).is_err() => Err(too_many_attempts()),
            _ => Ok(()),
        }
    }

    /// A creator's user, if it still is one.
    pub async fn user(&self, creator_id: &str, id: &str) -> Result<Option<UserRow>, StoreError> {
        self.store.user(creator_id, id).await
    }

    pub async fn team(&self, creator_id: &str) -> Result<Vec<UserView>, StoreError> {
        Ok(self
            .store
            .users(creator_id)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// Adds a user: with a password, ready to sign in; without, with an invite link
    /// (answered, emailed when email is on, and stored only hashed). `base` is where
    /// browsers reach the daemon.
    pub async fn add(
        &self,
        creator_id: &str,
        who: &Who,
        (email, role): (&str, Role),
        password: Option<String>,
        base: &str,
    ) -> Result<(UserView, Option<String>), ApiError> {
        let email = parse_email(email)?;
        let password_hash = match password {
            Some(password) => {
                check_password(&password)?;
                Some(passwords::hash(password).await?)
            }
            None => None,
        };
        let now = self.clock.now();
        let user = UserRow {
            id: new_id("du"),
            creator_id: creator_id.into(),
            email,
            role: role.as_str().into(),
            password_hash,
            created_at: now,
        };
        let invite = user
            .password_hash
            .is_none()
            .then(|| self.new_link(&user, LinkPurpose::Invite, now, base));
        let record = who
            .change(creator_id, now, "dashboard_user", "create", &user.id)
            .after(&record_state(&user));
        self.store
            .insert_user(
                &user,
                invite.as_ref().map(|link| &link.row),
                invite.as_ref().and_then(|link| link.email.as_ref()),
                &record,
            )
            .await
            .map_err(|err| match err {
                StoreError::Conflict(_) => ApiError::conflict(
                    "email_taken",
                    "a dashboard user with this email exists (an email belongs to one team)",
                ),
                other => other.into(),
            })?;
        Ok((view(user), invite.map(|link| link.url)))
    }

    /// A new link that sets `user_id`'s password (an owner resetting a teammate's): its
    /// URL, also emailed when email is on.
    pub async fn reset_link(
        &self,
        creator_id: &str,
        user_id: &str,
        base: &str,
    ) -> Result<String, ApiError> {
        let user = self
            .store
            .user(creator_id, user_id)
            .await?
            .ok_or_else(user_not_found)?;
        let purpose = if user.password_hash.is_some() {
            LinkPurpose::Reset
        } else {
            LinkPurpose::Invite
        };
        let link = self.new_link(&user, purpose, self.clock.now(), base);
        self.store
            .insert_link(&link.row, link.email.as_ref())
            .await?;
        Ok(link.url)
    }

    /// "Forgot your password": emails a reset link to whoever has this email, if anyone
    /// and if email is on. Answers nothing either way (nobody learns who has an account).
    pub async fn email_reset_link(&self, email: &str, base: &str) -> Result<(), ApiError> {
        let Ok(email) = parse_email(email) else {
            return Ok(());
        };
        let Some(user) = self.store.user_by_email(&email).await? else {
            return Ok(());
        };
        let link = self.new_link(&user, LinkPurpose::Reset, self.clock.now(), base);
        if link.email.is_some() {
            self.store
                .insert_link(&link.row, link.email.as_ref())
                .await?;
        }
        Ok(())
    }

    /// A link for `user`: the row to store (the token's hash), its URL, and its email when
    /// email is on.
    fn new_link(&self, user: &UserRow, purpose: LinkPurpose, now: i64, base: &str) -> NewLink {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let url = format!("{base}/dashboard/link/{token}");
        let email = self.email_enabled.then(|| {
            announcement(
                &user.creator_id,
                format!("dashboard_link:{}", hash_hex(&token)),
                DASHBOARD_LINK,
                serde_json::json!({
                    "email": user.email,
                    "url": url,
                    "purpose": purpose.as_str(),
                    "valid_hours": purpose.lifetime() / 3_600,
                }),
                now,
            )
        });
        NewLink {
            row: LinkRow {
                token_hash: hash_hex(&token),
                creator_id: user.creator_id.clone(),
                user_id: user.id.clone(),
                purpose: purpose.as_str().into(),
                created_at: now,
                expires_at: now + purpose.lifetime(),
            },
            url,
            email,
        }
    }

    /// Sets a password through a link, once: every other link of the user stops working
    /// and every earlier session of the user ends. The link is looked up before the
    /// password is hashed, so unknown links cost no hashing.
    pub async fn use_link(
        &self,
        token: &str,
        password: String,
        addr: Option<IpAddr>,
    ) -> Result<UserRow, ApiError> {
        self.admit_address(addr)?;
        let token_hash = hash_hex(token);
        let now = self.clock.now();
        let invalid = || {
            ApiError::not_found(
                "link_not_valid",
                "this link was used, has expired, or never existed; ask for a new one",
            )
        };
        if !self.store.link_is_usable(&token_hash, now).await? {
            return Err(invalid());
        }
        check_password(&password)?;
        let password_hash = passwords::hash(password).await?;
        self.store
            .use_link(&token_hash, now, &password_hash, |link| {
                Who::system("dashboard_link").change(
                    &link.creator_id,
                    now,
                    "dashboard_user",
                    "set_password",
                    &link.user_id,
                )
            })
            .await?
            .ok_or_else(invalid)
    }

    /// Changes a teammate's role. The last owner stays one.
    pub async fn set_role(
        &self,
        creator_id: &str,
        who: &Who,
        user_id: &str,
        role: Role,
    ) -> Result<UserView, ApiError> {
        let before = self
            .store
            .user(creator_id, user_id)
            .await?
            .ok_or_else(user_not_found)?;
        let now = self.clock.now();
        let after = UserRow {
            role: role.as_str().into(),
            ..before.clone()
        };
        let record = who
            .change(creator_id, now, "dashboard_user", "update", user_id)
            .before(&record_state(&before))
            .after(&record_state(&after));
        let changed = self
            .store
            .set_user_role(
                creator_id,
                user_id,
                role.as_str(),
                role != Role::Owner,
                (now, &record),
            )
            .await?;
        team_change(changed).map(view)
    }

    /// Removes a teammate and ends its sessions. The last owner stays.
    pub async fn remove(&self, creator_id: &str, who: &Who, user_id: &str) -> Result<(), ApiError> {
        let user = self
            .store
            .user(creator_id, user_id)
            .await?
            .ok_or_else(user_not_found)?;
        let now = self.clock.now();
        let record = who
            .change(creator_id, now, "dashboard_user", "delete", user_id)
            .before(&record_state(&user));
        let removed = self
            .store
            .delete_user(creator_id, user_id, (now, &record))
            .await?;
        team_change(removed).map(|_| ())
    }
}

/// A team change's outcome as the API answers it.
fn team_change(change: TeamChange) -> Result<UserRow, ApiError> {
    match change {
        TeamChange::Done(user) => Ok(user),
        TeamChange::Missing => Err(user_not_found()),
        TeamChange::LastOwner => Err(ApiError::conflict(
            "last_owner",
            "a team keeps at least one owner: make another owner first",
        )),
    }
}

/// A new link: what is stored, where it leads, and its email.
struct NewLink {
    row: LinkRow,
    url: String,
    email: Option<Announcement>,
}

pub fn view(user: UserRow) -> UserView {
    UserView {
        active: user.password_hash.is_some(),
        role: Role::parse(&user.role).unwrap_or(Role::Viewer),
        created_at: rfc3339(user.created_at),
        id: user.id,
        email: user.email,
    }
}

/// A user as its audit records show it: never its password's hash.
fn record_state(user: &UserRow) -> serde_json::Value {
    serde_json::json!({ "email": user.email, "role": user.role })
}

fn user_not_found() -> ApiError {
    ApiError::not_found("user_not_found", "no such dashboard user")
}
