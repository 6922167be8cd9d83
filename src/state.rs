//! The state every handler shares, built once at startup.

use crate::auth::SessionCache;
use crate::config::Config;
use crate::hub::Hub;
use crate::limits::Limits;
use crate::store::Store;
use crate::webhooks::Webhooks;

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub hub: Hub,
    pub sessions: SessionCache,
    pub limits: Limits,
    pub webhooks: Webhooks,
}
