//! Builds the application: store, hub, HTTP server; runs it until a signal stops it.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{Compress, DefaultHeaders, ErrorHandlers};
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::api;
use crate::assets;
use crate::auth::{self, SessionCache};
use crate::config::Config;
use crate::domain::{self, Role};
use crate::error::ApiError;
use crate::hub::Hub;
use crate::limits::Limits;
use crate::metrics;
use crate::model::Agent;
use crate::state::AppState;
use crate::store::{self, Store};
use crate::webhooks::{self, Webhooks};

/// Readers in the pool. Long polls hold none while they wait, but a woken poll that missed
/// the writer's hand-over reads, and with four readers those reads queued at 16 senders
/// (delivery p50 3 ms became 35 ms). Their page caches are kept small instead (see `store`).
const READ_CONNECTIONS: u32 = 8;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Opens the database, creates the first admin if needed, and binds the listener.
    pub async fn build(config: Config) -> Result<Self, Box<dyn std::error::Error>> {
        let store = Store::open(&config.db, READ_CONNECTIONS)?;
        ensure_first_admin(&store, &config).await?;
        let listener = TcpListener::bind(&config.addr)?;
        let port = listener.local_addr()?.port();
        let workers = config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let webhooks = Webhooks::load(&store).await?;
        let state = web::Data::new(AppState {
            limits: Limits::new(config.rate_limits),
            config,
            store,
            hub: Hub::new(),
            sessions: SessionCache::default(),
            webhooks,
        });
        let sweeper = state.clone();
        tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every_minute.tick().await;
                sweeper.limits.sweep();
                sweeper.hub.prune();
            }
        });
        if let Some(days) = state.config.retention_days {
            tokio::spawn(crate::retention::run(state.store.clone(), days));
        }
        webhooks::start_worker(&state)?;
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(ErrorHandlers::new().default_handler(crate::error::contract_shape))
                .wrap(Compress::default())
                .wrap(
                    DefaultHeaders::new()
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((header::REFERRER_POLICY, "strict-origin-when-cross-origin")),
                )
                // Outermost, so it counts and logs final statuses (405 rewrites, errors) and full time.
                .wrap(actix_web::middleware::from_fn(metrics::track_requests))
                .configure(api::routes)
                .configure(metrics::routes)
                .configure(assets::routes)
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        .workers(workers)
        .backlog(4096)
        .shutdown_timeout(10)
        // Signals are ours: on SIGTERM we first answer the held polls (see `run_until_stopped`).
        .disable_signals()
        .run();
        log::info!(
            "listening on http://{}:{port}",
            state
                .config
                .addr
                .rsplit_once(':')
                .map_or("127.0.0.1", |(h, _)| h)
        );
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Stops the server as SIGTERM would (for embedding and tests).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handle: self.server.handle(),
            hub: self.state.hub.clone(),
        }
    }

    /// Serves until SIGTERM or Ctrl-C: then answers every held poll at once, lets in-flight
    /// requests (and so their writes) finish, and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.stopper();
        tokio::spawn(async move {
            wait_for_signal().await;
            stopper.stop().await;
        });
        self.server.await
    }
}

/// Stops a running [`Application`] gracefully.
#[derive(Clone)]
pub struct Stopper {
    handle: actix_web::dev::ServerHandle,
    hub: Hub,
}

impl Stopper {
    /// The hub of the running app (tests look at its waiters).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Answers every held poll at once, then lets in-flight requests (and their writes) finish.
    pub async fn stop(&self) {
        log::info!("shutting down: answering held polls, finishing in-flight requests");
        self.hub.shut_down();
        self.handle.stop(true).await;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// On an empty database: an admin from `PARLEY_ADMIN_EMAIL`/`PARLEY_ADMIN_PASSWORD`, else
/// `admin@localhost` with a random password printed once.
async fn ensure_first_admin(
    store: &Store,
    config: &Config,
) -> Result<(), Box<dyn std::error::Error>> {
    let has_agents = store
        .read(|conn| Ok(store::agents::count(conn)? > 0))
        .await?;
    if has_agents {
        return Ok(());
    }
    let (email, password, generated) = match (&config.admin_email, &config.admin_password) {
        (Some(email), Some(password)) => (
            domain::parse_email(email)?,
            domain::parse_password(password)?,
            false,
        ),
        _ => ("admin@localhost".to_string(), random_password(), true),
    };
    let agent = Agent {
        id: domain::new_id(),
        name: "Admin".into(),
        email: email.clone(),
        role: Role::Admin,
        disabled: false,
        created_at: domain::now(),
    };
    let hash = auth::hash_password(&password)?;
    store
        .write(move |conn| api::agents::create(conn, &agent, &hash))
        .await?;
    if generated {
        log::warn!("created the first admin: email {email}, password {password} (shown only now; change it)");
    } else {
        log::info!("created the first admin {email} from PARLEY_ADMIN_EMAIL");
    }
    Ok(())
}

/// 20 characters from a 62-letter alphabet: about 119 bits.
pub fn random_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 20)
}
