//! The command line (contract §8). Every flag also reads `HOOKD_<FLAG>` from the
//! environment; values are parsed into typed config here, so a bad one stops startup
//! with a clear message before anything is opened.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hookd_core::retry::DEFAULT_RETRY_SCHEDULE;
use hookd_core::{EventTypeInfo, MasterKey, RetrySchedule};
use ipnet::IpNet;

#[derive(Debug, Parser)]
#[command(
    name = "hookd",
    version,
    about = "A self-hosted webhook platform, wire-compatible with HeyGen's v3 webhook API."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at startup: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server and the delivery engine (SQLite under ./data unless
    /// --database-url says otherwise).
    Serve(ServeArgs),
    /// Run a local receiver that prints each delivery and checks its signatures.
    Listen(crate::listen::ListenArgs),
    /// Re-seal every endpoint secret under a new master key. Stop every hookd using
    /// the database first, and start them again with the new key.
    RotateMasterKey(RotateMasterKeyArgs),
}

/// OAuth access tokens on the customer API, beside API keys (docs/security.md).
#[derive(Debug, Clone, Args)]
pub struct OAuthArgs {
    /// Accept JWT access tokens from this issuer (their `iss`) as bearer credentials
    /// on the customer API. Needs --oauth-audience and --oauth-jwks-url.
    #[arg(long, env = "HOOKD_OAUTH_ISSUER", value_name = "ISS", requires_all = ["oauth_audience", "oauth_jwks_url"])]
    pub oauth_issuer: Option<String>,

    /// The `aud` an access token must name.
    #[arg(long, env = "HOOKD_OAUTH_AUDIENCE", value_name = "AUD", requires = "oauth_issuer")]
    pub oauth_audience: Option<String>,

    /// The issuer's JSON Web Key Set (its `jwks_uri`).
    #[arg(long, env = "HOOKD_OAUTH_JWKS_URL", value_name = "URL", requires = "oauth_issuer",
          value_parser = parse_jwks_url)]
    pub oauth_jwks_url: Option<String>,

    /// The claim that holds the hookd account id the token acts for.
    #[arg(long, env = "HOOKD_OAUTH_ACCOUNT_CLAIM", value_name = "NAME", default_value = "hookd_account")]
    pub oauth_account_claim: String,
}

impl OAuthArgs {
    /// The settings, if OAuth is on.
    pub fn settings(&self) -> Option<hookd_oauth::OAuthSettings> {
        Some(hookd_oauth::OAuthSettings {
            issuer: self.oauth_issuer.clone()?,
            audience: self.oauth_audience.clone()?,
            jwks_url: self.oauth_jwks_url.clone()?,
            account_claim: self.oauth_account_claim.clone(),
        })
    }
}

fn parse_jwks_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|error| format!("not a URL: {error}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an http(s) URL".into());
    }
    Ok(raw.to_owned())
}

/// Where the data lives and the key that seals its secrets: the same flags for every
/// command that opens the database.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Directory for the SQLite database, the admin token and the default API key.
    #[arg(long, env = "HOOKD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: sqlite://PATH, or postgres://... (default: SQLite file DATA_DIR/hookd.db).
    /// Several instances may share one PostgreSQL database; a SQLite file belongs to one.
    #[arg(long, env = "HOOKD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The key endpoint secrets are sealed with at rest: 64 hex characters (32 bytes).
    /// If absent, DATA_DIR/master-key is used, generated (mode 0600) on first start.
    /// Every instance sharing a database needs the same key; back it up with the data.
    #[arg(long, env = "HOOKD_MASTER_KEY", hide_env_values = true, value_name = "HEX",
          value_parser = parse_master_key)]
    pub master_key: Option<MasterKey>,
}

/// Flags of `hookd rotate-master-key`: the database and key as `serve` takes them,
/// and the key to move to.
#[derive(Debug, Clone, Args)]
pub struct RotateMasterKeyArgs {
    #[command(flatten)]
    pub storage: StorageArgs,

    /// The key to move to (64 hex characters). Needed with --master-key; otherwise, if
    /// absent, a new key is generated into DATA_DIR/master-key.
    #[arg(long, env = "HOOKD_NEW_MASTER_KEY", hide_env_values = true, value_name = "HEX",
          value_parser = parse_master_key)]
    pub new_master_key: Option<MasterKey>,
}

/// Flags of `hookd serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (host:port; port 0 picks a free port).
    #[arg(long, env = "HOOKD_LISTEN", value_name = "HOST:PORT", default_value = "127.0.0.1:8080",
          value_parser = parse_listen_address)]
    pub listen: String,

    /// The address customers reach this server at (scheme, host and port, no path),
    /// for the portal links the operator API mints; default: http:// and --listen.
    #[arg(long, env = "HOOKD_PUBLIC_URL", value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// Sites allowed to show the customer portal in a frame (an iframe in your own
    /// dashboard): origins, comma-separated; default: none.
    #[arg(long, env = "HOOKD_PORTAL_FRAME_ANCESTORS", value_name = "ORIGINS", default_value = "",
          value_parser = parse_frame_ancestors)]
    pub portal_frame_ancestors: hookd_core::FrameAncestors,

    #[command(flatten)]
    pub oauth: OAuthArgs,

    #[command(flatten)]
    pub storage: StorageArgs,

    /// PostgreSQL connections this instance may open (every instance's count adds up
    /// against the server's max_connections).
    #[arg(long, env = "HOOKD_DATABASE_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(2..=1_000))]
    pub database_max_connections: u32,

    /// How long a request waits for the database before it is answered 503 (with
    /// Retry-After): a PostgreSQL connection, or a publish's commit. /readyz answers
    /// within a second whatever this is.
    #[arg(long, env = "HOOKD_DATABASE_TIMEOUT", value_name = "DURATION", default_value = "2s",
          value_parser = parse_database_timeout)]
    pub database_timeout: Duration,

    /// Send receivers a W3C `traceparent` header naming each attempt's span, when
    /// traces are exported (OTEL_EXPORTER_OTLP_ENDPOINT). Off: receivers learn nothing
    /// of hookd's traces.
    #[arg(long, env = "HOOKD_SEND_TRACEPARENT")]
    pub send_traceparent: bool,

    /// What this instance does: `all` serves the API and delivers; `api` only serves
    /// the API; `worker` only delivers (serving /healthz, /readyz and /metrics).
    /// `api` and `worker` need a shared database (PostgreSQL).
    #[arg(long, env = "HOOKD_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,

    /// Publish the rows producers insert into the `hookd_outbox` table in their own
    /// transactions (docs/outbox.md). On by default with PostgreSQL; SQLite has no
    /// outbox, so asking for it there stops startup.
    #[arg(long, env = "HOOKD_OUTBOX", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub outbox: Option<bool>,

    /// Delete events, their deliveries and attempts older than this, in small batches
    /// ("0s" keeps everything). Must exceed the retry schedule's total.
    #[arg(long, env = "HOOKD_RETENTION", value_name = "DURATION", default_value = "30d",
          value_parser = parse_duration)]
    pub retention: Duration,

    /// Admin token for /admin/v1. If absent, one is generated on first start, saved to
    /// DATA_DIR/admin-token (mode 0600) and printed once.
    #[arg(long, env = "HOOKD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Accept http:// URLs for endpoints and callbacks (development only).
    #[arg(long, env = "HOOKD_ALLOW_HTTP")]
    pub allow_http: bool,

    /// Lift the destination policy for this CIDR range or address (repeatable; in the
    /// environment, comma-separated). Tests and local development allow 127.0.0.0/8.
    #[arg(long = "allow-destination", env = "HOOKD_ALLOW_DESTINATION", value_name = "CIDR",
          value_delimiter = ',', value_parser = parse_cidr)]
    pub allow_destinations: Vec<IpNet>,

    /// Delays between delivery attempts: the first attempt is immediate, then one retry
    /// after each delay, then the delivery is failed.
    #[arg(long, env = "HOOKD_RETRY_SCHEDULE", value_name = "LIST", default_value = DEFAULT_RETRY_SCHEDULE,
          value_parser = parse_retry_schedule)]
    pub retry_schedule: RetrySchedule,

    /// How long one delivery attempt may take before it counts as failed.
    #[arg(long, env = "HOOKD_ATTEMPT_TIMEOUT", value_name = "DURATION", default_value = "10s",
          value_parser = parse_attempt_timeout)]
    pub attempt_timeout: Duration,

    /// Disable an endpoint whose attempts have failed, with no success, for this long.
    #[arg(long, env = "HOOKD_DISABLE_AFTER", value_name = "DURATION", default_value = "5d",
          value_parser = parse_duration)]
    pub disable_after: Duration,

    /// Delivery attempts in flight at once, over all endpoints.
    #[arg(long, env = "HOOKD_MAX_IN_FLIGHT", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_in_flight: u32,

    /// How long a client may take to send a request's headers, and again its body;
    /// slower clients are cut off (headers) or answered 400 (body).
    #[arg(long, env = "HOOKD_CLIENT_TIMEOUT", value_name = "DURATION", default_value = "30s",
          value_parser = parse_duration)]
    pub client_timeout: Duration,

    /// Customer API requests per second each account may make (in bursts of as many);
    /// beyond it, 429 `rate_limit_exceeded` with `Retry-After`. 0 turns the limit off.
    #[arg(long, env = "HOOKD_RATE_LIMIT", value_name = "PER_SECOND", default_value_t = 100)]
    pub rate_limit: u32,

    /// Delivery attempts in flight at once to one endpoint, so a slow one cannot hold up others.
    #[arg(long, env = "HOOKD_MAX_IN_FLIGHT_PER_ENDPOINT", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub max_in_flight_per_endpoint: u32,

    /// Run a built-in stand-in renderer for trying hookd alone. It RENDERS NOTHING: it
    /// marks new videos processing and, after --demo-render-time, completed with a
    /// placeholder URL (or failed, when the title contains "fail"), through the operator API.
    #[arg(long, env = "HOOKD_DEMO_RENDERER")]
    pub demo_renderer: bool,

    /// How long the demo renderer pretends to render.
    #[arg(long, env = "HOOKD_DEMO_RENDER_TIME", value_name = "DURATION", default_value = "5s",
          value_parser = parse_duration)]
    pub demo_render_time: Duration,

    /// Add an event type to the catalog without a rebuild: NAME=DESCRIPTION (repeatable;
    /// in the environment, separated by ';').
    #[arg(long = "event-type", env = "HOOKD_EVENT_TYPE", value_name = "NAME=DESCRIPTION",
          value_delimiter = ';', value_parser = parse_event_type)]
    pub event_types: Vec<EventTypeInfo>,

    /// Log format.
    #[arg(long, env = "HOOKD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Which duties an instance takes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    All,
    Api,
    Worker,
}

impl Role {
    pub fn serves_api(self) -> bool {
        self != Self::Worker
    }

    pub fn delivers(self) -> bool {
        self != Self::Api
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_cidr(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{raw:?} is not a CIDR range (like 127.0.0.0/8) or an IP address"))
}

fn parse_master_key(raw: &str) -> Result<MasterKey, String> {
    MasterKey::from_hex(raw).map_err(|error| error.to_string())
}

fn parse_retry_schedule(raw: &str) -> Result<RetrySchedule, String> {
    RetrySchedule::parse(raw).map_err(|error| error.to_string())
}

fn parse_attempt_timeout(raw: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(raw.trim())
        .map_err(|_| format!("{raw:?} is not a duration like 10s or 1m"))?;
    if timeout.is_zero() || timeout > Duration::from_secs(300) {
        return Err("the attempt timeout must be between 1ms and 5m".into());
    }
    Ok(timeout)
}

/// `HOST:PORT` (an IP address or a name, `[::1]:8080` for IPv6), checked here so a
/// typo is a usage error, not a failure after the database was opened.
fn parse_frame_ancestors(raw: &str) -> Result<hookd_core::FrameAncestors, String> {
    hookd_core::FrameAncestors::parse(raw.split(',')).map_err(|error| error.to_string())
}

fn parse_public_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim_end_matches('/');
    let host = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://"));
    match host {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => Ok(trimmed.to_owned()),
        _ => Err(format!(
            "{raw:?} is not a base URL (e.g. https://hooks.example.com or http://127.0.0.1:8080)"
        )),
    }
}

fn parse_listen_address(raw: &str) -> Result<String, String> {
    let usage = || format!("{raw:?} is not HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080)");
    if raw.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(raw.to_owned());
    }
    let (host, port) = raw.rsplit_once(':').ok_or_else(usage)?;
    let name_like = !host.is_empty()
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !name_like || port.parse::<u16>().is_err() {
        return Err(usage());
    }
    Ok(raw.to_owned())
}

fn parse_database_timeout(raw: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(raw.trim())
        .map_err(|_| format!("{raw:?} is not a duration like 2s or 500ms"))?;
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(60) {
        return Err("the database timeout must be between 100ms and 60s".into());
    }
    Ok(timeout)
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim()).map_err(|_| format!("{raw:?} is not a duration like 5d or 12h"))
}

fn parse_event_type(raw: &str) -> Result<EventTypeInfo, String> {
    let (name, description) = raw.split_once('=').unwrap_or((raw, ""));
    let name = name.trim();
    let description = match description.trim() {
        "" => format!("The {name} event."),
        given => given.to_owned(),
    };
    Ok(EventTypeInfo { name: name.to_owned(), description })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let argv = ["hookd", "serve"].iter().chain(args).copied();
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Serve(serve) => serve,
            other => panic!("parsed as {other:?}"),
        })
    }

    #[test]
    fn defaults_match_the_contract() {
        let args = serve(&[]).expect("defaults parse");
        assert_eq!(args.listen, "127.0.0.1:8080");
        assert_eq!(args.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(args.retry_schedule.max_attempts(), 11);
        assert_eq!(args.attempt_timeout, Duration::from_secs(10));
        assert!(!args.allow_http);
    }

    #[test]
    fn bad_values_are_refused_with_a_message() {
        for (flag, value, says) in [
            ("--allow-destination", "127.0.0.0/33", "not a CIDR"),
            ("--retry-schedule", "5s,later", "not a duration"),
            ("--attempt-timeout", "0s", "between"),
            ("--attempt-timeout", "soon", "not a duration"),
            ("--public-url", "hooks.example.com", "not a base URL"),
            ("--public-url", "https://hooks.example.com/portal", "not a base URL"),
        ] {
            let error = serve(&[flag, value]).expect_err("refused").to_string();
            assert!(error.contains(says), "{flag} {value}: {error}");
        }
    }

    #[test]
    fn the_public_url_loses_its_trailing_slash() {
        let args = serve(&["--public-url", "https://hooks.example.com:8443/"]).expect("parse");
        assert_eq!(args.public_url.as_deref(), Some("https://hooks.example.com:8443"));
        assert_eq!(serve(&[]).expect("parse").public_url, None, "default: built from --listen");
    }

    #[test]
    fn allow_destination_takes_ranges_and_bare_addresses() {
        let args =
            serve(&["--allow-destination", "127.0.0.0/8", "--allow-destination", "::1"]).expect("parse");
        assert_eq!(args.allow_destinations.len(), 2);
        assert!(args.allow_destinations[1].contains(&"::1".parse::<IpAddr>().expect("ip")));
    }
}
