//! Builds the application — store, poll hub, services, HTTP server — and runs it until a
//! signal stops it. Each dependency is made once here and registered on its own.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{Compress, DefaultHeaders, ErrorHandlers};
use actix_web::{web, App, HttpResponse, HttpServer};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::{DomainError, Role};
use crate::http::api::docs;
use crate::http::body_deadline::{self, BodyDeadline};
use crate::http::conn_limit::{self, ConnectionLimits};
use crate::http::error::{self, ApiError};
use crate::http::{compression, openapi, params, request_metrics, routes};
use crate::poll::Hub;
use crate::services::agents::{self, AgentService, NewAgent};
use crate::services::auth::{self, Sessions};
use crate::services::bus::Bus;
use crate::services::chats::ChatService;
use crate::services::identity::Identity;
use crate::services::limits::Limits;
use crate::services::mail::{self, Mail, MailService};
use crate::services::messages::MessageService;
use crate::services::presence::Presence;
use crate::services::privacy::PrivacyService;
use crate::services::retention;
use crate::services::settings::SettingsService;
use crate::services::upload_limits::{UploadLimits, UploadPolicy};
use crate::services::visitors::VisitorService;
use crate::services::webhooks::{self, Webhooks};
use crate::store::{self, Store};

pub struct Application {
    port: u16,
    server: Server,
    store: Store,
    hub: Hub,
    shutdown: CancellationToken,
}

impl Application {
    /// Opens the database, creates the first admin if needed, and binds the listener.
    pub async fn build(config: Config) -> Result<Self, Box<dyn std::error::Error>> {
        // Long polls hold a socket each: the default soft limit (often 1024) is far too low.
        if let Err(e) = conn_limit::raise_open_files_limit() {
            log::warn!("could not raise the open-files limit: {e}");
        }
        let identity = Identity::new(config.identity_secret.as_deref(), config.identity_required)?;
        let store = Store::open_configured(&config).await?;
        ensure_first_admin(&store, &config).await?;
        let listener = TcpListener::bind(&config.addr)?;
        let port = listener.local_addr()?.port();
        let workers = config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));

        let shutdown = CancellationToken::new();
        let hub = Hub::new(shutdown.clone(), config.max_polls_per_token);
        hub.start();
        let limits = Arc::new(Limits::new(config.rate_limits));
        let webhooks = Webhooks::load(&store).await?;
        let mail = Mail::load(&store, &config, port).await?;
        let bus = Bus::new(&store);
        let sessions = Sessions::new(store.clone(), hub.clone(), bus.clone())
            .verified_visitors_only(identity.required());
        let forget = sessions.clone();
        bus.start(
            &store,
            &hub,
            Arc::new(move |tokens| forget.forget(tokens)),
            shutdown.clone(),
        )?;
        sessions.watch_epoch(shutdown.clone());
        let messages = MessageService::new(
            store.clone(),
            hub.clone(),
            webhooks.clone(),
            limits.clone(),
            bus.clone(),
            mail.clone(),
        );
        let chats = ChatService::new(
            store.clone(),
            hub.clone(),
            webhooks.clone(),
            bus.clone(),
            mail.clone(),
        );
        let agents = AgentService::new(
            store.clone(),
            sessions.clone(),
            limits.clone(),
            config.session_lifetime(),
        );
        let visitors =
            VisitorService::new(store.clone(), sessions.clone(), limits.clone(), identity);
        let privacy = PrivacyService::new(store.clone(), sessions.clone(), webhooks.clone());
        let presence = Presence::new(store.clone(), Duration::from_secs(config.presence_window));
        let settings = SettingsService::new(store.clone(), presence.clone());
        let mail_service = MailService::new(store.clone(), mail.clone(), limits.clone());

        let uploads = UploadLimits::new(UploadPolicy {
            max_concurrent_per_token: config.uploads_per_token,
            max_concurrent_per_ip: config.uploads_per_ip,
            bytes_per_visitor_per_hour: config.upload_quota_visitor,
            bytes_per_ip_per_hour: config.upload_quota_ip,
            min_free_disk: config.min_free_disk,
        });
        // Behind a proxy every connection comes from the proxy: a per-address cap would be a
        // cap on everyone together (the proxy limits per client, see docs/DEPLOY.md).
        let per_ip = if config.trust_proxy {
            0
        } else {
            config.max_connections_per_ip
        };
        // The total is actix's own cap (per worker); the per-address count needs a slot in
        // each connection's data, which is only kept when that cap is on.
        let connections = (per_ip > 0).then(|| ConnectionLimits::new(per_ip, 0));
        let per_worker = config.max_connections.div_ceil(workers.max(1));
        let body_deadline = BodyDeadline {
            idle: Duration::from_secs(config.body_idle_timeout.max(1)),
            total: Duration::from_secs(config.body_timeout.max(1)),
            min_bytes_per_sec: config.body_min_rate,
            ..BodyDeadline::default()
        };

        let (sweep_limits, sweep_uploads) = (limits.clone(), uploads.clone());
        tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(Duration::from_secs(60));
            loop {
                every_minute.tick().await;
                sweep_limits.sweep();
                sweep_uploads.sweep();
            }
        });
        if let Some(days) = config.retention_days {
            tokio::spawn(retention::run(store.clone(), days));
        }
        webhooks::start_worker(
            store.clone(),
            webhooks.clone(),
            shutdown.clone(),
            Duration::from_millis(config.webhook_retry_base_ms),
            config.webhook_allow_private,
        )?;
        mail::start_worker(store.clone(), mail, shutdown.clone())?;

        let host = config
            .addr
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h)
            .to_string();
        let data = (
            web::Data::new(config),
            web::Data::new(store.clone()),
            web::Data::new(hub.clone()),
            web::Data::new(sessions),
            web::Data::new(webhooks),
            web::Data::new(messages),
            web::Data::new(chats),
            web::Data::new(agents),
            web::Data::new(visitors),
            web::Data::new(uploads),
            web::Data::new(presence),
            web::Data::new(settings),
            web::Data::new(mail_service),
            web::Data::new(privacy),
        );
        let api_document = web::Data::new(docs::ApiDocument(openapi::json));
        let on_connect = connections.map(|c| c.on_connect_fn());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.0.clone())
                .app_data(data.1.clone())
                .app_data(data.2.clone())
                .app_data(data.3.clone())
                .app_data(data.4.clone())
                .app_data(data.5.clone())
                .app_data(data.6.clone())
                .app_data(data.7.clone())
                .app_data(data.8.clone())
                .app_data(data.9.clone())
                .app_data(data.10.clone())
                .app_data(data.11.clone())
                .app_data(data.12.clone())
                .app_data(data.13.clone())
                .app_data(api_document.clone())
                .app_data(body_deadline)
                .app_data(params::json_config())
                .app_data(web::QueryConfig::default().error_handler(params::query_error))
                .app_data(web::PathConfig::default().error_handler(params::path_error))
                .app_data(web::PayloadConfig::new(params::MAX_JSON_BYTES))
                // Innermost: a body that arrives too slowly fails its handler's read with 408.
                .wrap(body_deadline::Enforce)
                .wrap(ErrorHandlers::new().default_handler(error::contract_shape))
                // Only bodies of 4 KiB and more are compressed (see `compression`).
                .wrap(compression::leave_small_uncompressed())
                .wrap(Compress::default())
                .wrap(compression::drop_identity_marker())
                .wrap(
                    DefaultHeaders::new()
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((header::REFERRER_POLICY, "strict-origin-when-cross-origin")),
                )
                // A connection over its address's share answers 429 at once (not /healthz).
                .wrap(conn_limit::Enforce)
                // Outermost, so it counts and logs final statuses (405 rewrites, errors) and full time.
                .wrap(request_metrics::TrackRequests)
                .configure(routes::configure)
                .default_service(web::to(not_found))
        });
        // Without a per-address cap, connections carry no data of ours (it costs memory on
        // every held poll).
        let server = match on_connect {
            Some(count) => server.on_connect(count),
            None => server,
        };
        // Answers are small and wanted at once: Nagle's algorithm would hold the second
        // write of an answer sent in two (a streamed or compressed body) until the client's
        // delayed ACK, 40 ms later.
        let server = server
            .tcp_nodelay(true)
            .listen(listener)?
            .workers(workers)
            .max_connections(if per_worker == 0 {
                usize::MAX
            } else {
                per_worker
            })
            .backlog(4096)
            .shutdown_timeout(10)
            // Signals are ours: on SIGTERM we first answer the held polls (see `run_until_stopped`).
            .disable_signals()
            .run();
        log::info!("listening on http://{host}:{port}");
        Ok(Self {
            port,
            server,
            store,
            hub,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database handle of the running app (tests and embedding).
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Stops the server as SIGTERM would (for embedding and tests).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handle: self.server.handle(),
            hub: self.hub.clone(),
            shutdown: self.shutdown.clone(),
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
    shutdown: CancellationToken,
}

impl Stopper {
    /// The hub of the running app (tests look at its waiters).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Answers every held poll at once, then lets in-flight requests (and their writes) finish.
    pub async fn stop(&self) {
        log::info!("shutting down: answering held polls, finishing in-flight requests");
        self.shutdown.cancel();
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
    let has_agents = store.read(|db| Ok(store::agents::count(db)? > 0)).await?;
    if has_agents {
        return Ok(());
    }
    let (email, password, generated) = match (&config.admin_email, &config.admin_password) {
        (Some(email), Some(password)) => (email.clone(), password.clone(), false),
        _ => ("admin@localhost".to_string(), random_password(), true),
    };
    let new = NewAgent::parse(&email, "Admin", &password, Some(Role::Admin))?;
    let hash = auth::hash_password(&password)?;
    let agent = match store
        .write(move |db| agents::create_in(db, new, &hash))
        .await
    {
        Ok(agent) => agent,
        // Another instance on the same (PostgreSQL) database created it first.
        Err(DomainError::Conflict(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if generated {
        log::warn!(
            "created the first admin: email {}, password {password} (shown only now; change it)",
            agent.email
        );
    } else {
        log::info!(
            "created the first admin {} from PARLEY_ADMIN_EMAIL",
            agent.email
        );
    }
    Ok(())
}

/// 20 characters from a 62-letter alphabet: about 119 bits.
pub fn random_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 20)
}
