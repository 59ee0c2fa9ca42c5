//! Where each creator's analytics go, in memory: asked on the widgets' hot path
//! (`wants`), so that a creator with no PostHog project makes no analytics work at all.

use dashmap::DashMap;

use crate::hashing::FastHash;
use crate::sealing::Sealer;
use crate::store::outbox::PosthogRow;

/// A PostHog project: its host and project API key.
#[derive(Debug, Clone)]
pub struct Project {
    pub host: String,
    pub api_key: String,
}

/// The platform's project and the creators' own.
pub struct Projects {
    platform: Option<Project>,
    creators: DashMap<String, Project, FastHash>,
}

/// `creator` or `platform`: which project a message goes to.
pub const CREATOR_TARGET: &str = "creator";
pub const PLATFORM_TARGET: &str = "platform";

impl Projects {
    pub fn new(platform: Option<Project>) -> Projects {
        if platform.is_none() {
            tracing::info!(
                "analytics to the platform's PostHog project are off: posthog.api_key is not \
                 set (creators may still set their own)"
            );
        }
        Projects {
            platform,
            creators: DashMap::default(),
        }
    }

    /// The creators' projects, as stored (at start).
    pub fn load(&self, rows: Vec<PosthogRow>, sealer: &Sealer) {
        for row in rows {
            match sealer.open(&key_owner(&row.creator_id), &row.api_key_sealed) {
                Ok(api_key) => {
                    self.creators.insert(
                        row.creator_id,
                        Project {
                            host: row.host,
                            api_key,
                        },
                    );
                }
                Err(err) => tracing::warn!(error = %err,
                    "a creator's PostHog key does not open; its analytics go to the platform's project"),
            }
        }
    }

    pub fn set(&self, creator_id: &str, project: Project) {
        self.creators.insert(creator_id.to_string(), project);
    }

    pub fn remove(&self, creator_id: &str) {
        self.creators.remove(creator_id);
    }

    /// Whether any creator's analytics go anywhere.
    pub fn any(&self) -> bool {
        self.platform.is_some() || !self.creators.is_empty()
    }

    /// Whether the creator's analytics go anywhere.
    pub fn wants(&self, creator_id: &str) -> bool {
        self.platform.is_some() || self.creators.contains_key(creator_id)
    }

    /// The target of a creator's next message, if any.
    pub fn target_of(&self, creator_id: &str) -> Option<&'static str> {
        if self.creators.contains_key(creator_id) {
            Some(CREATOR_TARGET)
        } else {
            self.platform.as_ref().map(|_| PLATFORM_TARGET)
        }
    }

    /// The project a message made for `target` goes to now.
    pub fn project(&self, creator_id: &str, target: &str) -> Option<Project> {
        match target {
            CREATOR_TARGET => self.creators.get(creator_id).map(|p| p.clone()),
            _ => self.platform.clone(),
        }
    }

    /// The creator's own project's host, if it set one.
    pub fn creator_host(&self, creator_id: &str) -> Option<String> {
        self.creators.get(creator_id).map(|p| p.host.clone())
    }
}

/// What a creator's sealed PostHog key is bound to.
pub fn key_owner(creator_id: &str) -> String {
    format!("posthog:{creator_id}")
}
