//! `vdi login`: signs in at an OpenID Provider with the authorization-code flow, PKCE (S256) and
//! a one-shot loopback redirect listener (RFC 8252), caches the tokens, and writes a kubeconfig
//! user whose credentials come from `vdi token` (an exec credential plugin).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tokio::sync::oneshot;

use crate::kubeconfig::{self, ExecUser};
use crate::oidc::{DEFAULT_SCOPES, IdClaims, OidcArgs, Pkce, Provider, random_token};
use crate::token_cache::{self, CachedTokens};

/// How long the redirect listener waits for the browser to give the response back after the
/// login finished.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Arguments of `vdi login`.
#[derive(clap::Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    pub(crate) oidc: OidcArgs,
    /// The kubeconfig to write the user into [default: KUBECONFIG's first file, or
    /// ~/.kube/config].
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// A cluster of the kubeconfig to make a context `<user-name>@<cluster>` for, and switch to.
    #[arg(long)]
    pub(crate) cluster: Option<String>,
    /// The name of the kubeconfig user entry.
    #[arg(long, default_value = "vdi-oidc")]
    pub(crate) user_name: String,
    /// Loopback address of the redirect listener (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// The scopes to ask for (space-separated).
    #[arg(long, default_value = DEFAULT_SCOPES)]
    pub(crate) scopes: String,
    /// Seconds to wait for the browser to come back.
    #[arg(long, default_value_t = 300)]
    pub(crate) timeout: u64,
}

/// What the redirect listener heard: the code, or why the login failed.
type Callback = Result<String, String>;

#[derive(Clone)]
struct CallbackState {
    state: Arc<str>,
    done: Arc<Mutex<Option<oneshot::Sender<Callback>>>>,
}

pub(crate) fn run(args: &LoginArgs) -> Result<ExitCode> {
    ensure!(
        args.listen.ip().is_loopback(),
        "--listen must be a loopback address, not {}",
        args.listen
    );
    let kubeconfig_path = match &args.kubeconfig {
        Some(path) => path.clone(),
        None => kubeconfig::default_path()?,
    };
    // Refuse a missing cluster before sending anyone to a browser.
    let mut doc = kubeconfig::read(&kubeconfig_path)?;
    if let Some(cluster) = &args.cluster {
        ensure!(
            kubeconfig::names(&doc, "clusters").contains(&cluster.as_str()),
            "{} has no cluster named {cluster:?}",
            kubeconfig_path.display()
        );
    }
    let ca_file = args
        .oidc
        .ca_file
        .as_deref()
        .map(|p| std::fs::canonicalize(p).with_context(|| format!("find {}", p.display())))
        .transpose()?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let (claims, tokens) = rt.block_on(sign_in(args))?;
    let cache = token_cache::store(&tokens)?;

    let command = std::env::current_exe().context("find the vdi binary")?;
    let mut exec_args = vec![
        "token".to_owned(),
        "--issuer".to_owned(),
        args.oidc.issuer.clone(),
        "--client-id".to_owned(),
        args.oidc.client_id.clone(),
    ];
    if let Some(ca) = &ca_file {
        exec_args.extend(["--ca-file".to_owned(), path_string(ca)?]);
    }
    let user = ExecUser {
        name: args.user_name.clone(),
        command: path_string(&command)?,
        args: exec_args,
    };
    let context = kubeconfig::merge(&mut doc, &user, args.cluster.as_deref())?;
    if let Some(dir) = kubeconfig_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    token_cache::write_private(&kubeconfig_path, kubeconfig::to_yaml(&doc)?.as_bytes())?;

    println!("Logged in as {} at {}.", claims.sub, claims.iss);
    println!("Tokens cached in {}.", cache.display());
    match context {
        Some(context) => println!(
            "{}: user {:?}, context {context:?} (current).",
            kubeconfig_path.display(),
            user.name
        ),
        None => println!("{}: user {:?}.", kubeconfig_path.display(), user.name),
    }
    Ok(ExitCode::SUCCESS)
}

/// The browser side of the login: listener up, URL printed, code back, tokens checked.
async fn sign_in(args: &LoginArgs) -> Result<(IdClaims, CachedTokens)> {
    let provider = Provider::discover(&args.oidc).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let addr = listener.local_addr().context("the listener's address")?;
    let redirect_uri = format!("http://{addr}/callback");

    let state = random_token();
    let nonce = random_token();
    let pkce = Pkce::new();
    let url = provider.authorization_url(&redirect_uri, &args.scopes, &state, &nonce, &pkce)?;
    println!("Open this URL in a browser to sign in:");
    println!("{url}");

    let (done_tx, done_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let app = axum::Router::new()
        .route("/callback", axum::routing::get(callback))
        .with_state(CallbackState {
            state: state.into(),
            done: Arc::new(Mutex::new(Some(done_tx))),
        });
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future(),
    );
    let heard = tokio::time::timeout(Duration::from_secs(args.timeout), done_rx).await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
    let code = match heard {
        Err(_) => {
            return Err(anyhow!(
                "no answer from the browser within {} s",
                args.timeout
            ));
        }
        Ok(Err(_)) => return Err(anyhow!("the redirect listener stopped")),
        Ok(Ok(callback)) => callback.map_err(|e| anyhow!("login failed: {e}"))?,
    };

    let response = provider
        .exchange_code(&code, &redirect_uri, &pkce.verifier)
        .await?;
    let id_token = response
        .id_token
        .context("the provider returned no ID token (is `openid` among the scopes?)")?;
    let claims = IdClaims::parse(&id_token)?;
    claims.check(provider.issuer(), &args.oidc.client_id, Some(&nonce))?;
    let tokens = CachedTokens {
        issuer: args.oidc.issuer.clone(),
        client_id: args.oidc.client_id.clone(),
        id_token,
        refresh_token: response.refresh_token,
    };
    Ok((claims, tokens))
}

/// Why a redirect with another `state` is refused.
const STATE_MISMATCH: &str =
    "the redirect's state does not match the request's (a forged or stale redirect)";

/// `GET /callback`: the provider's redirect (RFC 6749 §4.1.2). The first answer with our
/// `state` ends the login; a wrong `state` (a forged or stale redirect) ends it too, refused.
async fn callback(
    State(expected): State<CallbackState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str);
    let (status, result, message) = if param("state") != Some(&*expected.state) {
        (
            StatusCode::BAD_REQUEST,
            Err(STATE_MISMATCH.to_owned()),
            "Login refused: the state does not match. Run vdi login again.",
        )
    } else if let Some(error) = param("error") {
        let description = param("error_description").unwrap_or_default();
        (
            StatusCode::BAD_REQUEST,
            Err(format!("the provider answered {error}: {description}")),
            "Login failed; see the terminal.",
        )
    } else if let Some(code) = param("code") {
        (
            StatusCode::OK,
            Ok(code.to_owned()),
            "Signed in. You can close this window and return to the terminal.",
        )
    } else {
        return (StatusCode::BAD_REQUEST, "no code in the redirect").into_response();
    };
    let sender = expected
        .done
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match sender {
        Some(sender) => {
            let _ = sender.send(result);
        }
        None => return (StatusCode::CONFLICT, "this login has already finished").into_response(),
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>vdi login</title></head>\
         <body><p>{message}</p></body></html>"
    );
    (status, [(header::CONNECTION, "close")], Html(page)).into_response()
}

fn path_string(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}
