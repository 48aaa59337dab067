//! The commands that need the worker crate: `readroom worker`, `keygen`, `watermark decode`,
//! the re-render of `grade verify` and `demo` (whose embedded default runs the in-process worker). Built without the
//! `embedded-worker` feature (the API-only server), each refuses with a clear message instead.

#[cfg(feature = "embedded-worker")]
mod imp {
    use std::path::Path;
    use std::sync::Arc;

    use anyhow::Context;

    use crate::cli::{KeygenArgs, WorkerArgs};
    use crate::config::Config;

    /// Largest picture `watermark decode` reads (pixels), so a hostile file cannot exhaust
    /// memory (the detector holds ~12 bytes per pixel).
    const MAX_WATERMARK_PIXELS: u64 = 24 * 1024 * 1024;

    /// The watermark key file: `--key-file`, else `stream.watermark_key_file`, else
    /// `<data_dir>/keys/watermark.key`.
    pub fn watermark_key_path(config: &Config, key_file: Option<&Path>) -> std::path::PathBuf {
        match key_file {
            Some(path) => path.to_owned(),
            None if !config.stream.watermark_key_file.as_os_str().is_empty() => {
                config.stream.watermark_key_file.clone()
            }
            None => config.data_dir.join("keys").join("watermark.key"),
        }
    }

    /// The watermark key file a worker (a process, or the embedded one) marks frames with:
    /// `stream.watermark_key_file` if set (it must then exist), else
    /// `<data_dir>/keys/watermark.key`, created (0600) on first use. A worker that cannot
    /// create it marks with a throw-away key nobody can decode (an empty path), with an error
    /// in the log; every worker and the decoder must be given the same file.
    pub fn worker_watermark_key(config: &Config) -> std::path::PathBuf {
        if !config.stream.watermark_key_file.as_os_str().is_empty() {
            return config.stream.watermark_key_file.clone();
        }
        let path = watermark_key_path(config, None);
        match readroom_worker::watermark::WatermarkKey::load_or_create(&path) {
            Ok((key, created)) => {
                if created {
                    tracing::info!(path = %path.display(), fingerprint = key.fingerprint(),
                        "created a watermark key; give every worker and `readroom watermark decode` this same file (stream.watermark_key_file)");
                }
                path
            }
            Err(err) => {
                tracing::error!(error = %err, "no watermark key: frames are marked with a throw-away key nobody can decode; set stream.watermark_key_file");
                std::path::PathBuf::new()
            }
        }
    }

    /// `readroom watermark decode`: the viewer session (its first 8 bytes) hidden in a frame,
    /// a screenshot, a crop, a JPEG, a rescaled copy or a grab of the video.
    pub fn watermark_decode(
        config: &Config,
        key_file: Option<&Path>,
        path: &Path,
    ) -> anyhow::Result<[u8; 8]> {
        let key_path = watermark_key_path(config, key_file);
        let key = readroom_worker::watermark::WatermarkKey::load(&key_path)?;
        let reader = image::ImageReader::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .with_guessed_format()
            .with_context(|| format!("cannot read {}", path.display()))?;
        let (width, height) = reader
            .into_dimensions()
            .with_context(|| format!("{} is not a readable image", path.display()))?;
        if u64::from(width) * u64::from(height) > MAX_WATERMARK_PIXELS {
            anyhow::bail!(
                "{} is {width}×{height}: larger than this command reads (scale it down first)",
                path.display()
            );
        }
        let image = image::open(path)
            .with_context(|| format!("{} is not a readable image", path.display()))?
            .to_rgb8();
        let Some(found) =
            readroom_worker::watermark::decode(&key, image.width(), image.height(), image.as_raw())
        else {
            anyhow::bail!(
                "no mark found in {} with key {} (wrong key, no readroom frame, or too small or too damaged: it needs about 200×200 frame pixels)",
                path.display(),
                key.fingerprint()
            );
        };
        println!("viewer session {}", found.session);
        println!(
            "found at scale {:.2}, sync {:.1}, {} of {} coded bits corrected, key {}",
            found.scale,
            found.sync,
            found.corrected_bits,
            readroom_worker::watermark::CODED_BITS,
            key.fingerprint()
        );
        Ok(found.session.0)
    }

    /// Renders a recorded lossless frame again from its encrypted bundle(s) with this host's
    /// worker identity (`identity`, else the configured one) and watermark key, and returns its
    /// pixel hash (`readroom grade verify`).
    pub async fn rerender_sha256(
        config: &Config,
        identity: Option<&Path>,
        key_file: Option<&Path>,
        frame: crate::forensics_cmd::FrameToRender,
    ) -> anyhow::Result<String> {
        let identity_path = identity
            .map(Path::to_path_buf)
            .unwrap_or_else(|| config.worker_identity_path());
        let identity = readroom_worker::keys::load(&identity_path).with_context(|| {
            format!(
                "cannot load the worker identity {} (grade verify runs where a worker identity is; --identity)",
                identity_path.display()
            )
        })?;
        let key_path = watermark_key_path(config, key_file);
        let key = readroom_worker::watermark::WatermarkKey::load(&key_path)?;
        let store = crate::store::open(config).await?;
        let recorded = readroom_worker::verify::RecordedFrame {
            bundle: frame.bundle,
            prior_bundle: frame.prior_bundle,
            state: frame.state,
            mark: readroom_worker::watermark::Watermark {
                grader: frame.mark.label,
                session: frame.mark.session,
                unix_minute: frame.mark.unix_minute,
                key: Arc::new(key),
            },
        };
        let handle = tokio::runtime::Handle::current();
        let sha = tokio::task::spawn_blocking(move || {
            readroom_worker::verify::rerender_sha256(&store, &handle, &[identity], &recorded)
        })
        .await
        .context("the render task failed")??;
        Ok(sha)
    }

    /// `readroom keygen`: writes a worker identity (0600) and prints its recipient.
    pub fn keygen(config: &Config, args: KeygenArgs) -> anyhow::Result<()> {
        let path = args.output.unwrap_or_else(|| config.worker_identity_path());
        let identity = readroom_worker::keys::generate(&path)?;
        eprintln!("wrote worker identity to {} (mode 0600)", path.display());
        eprintln!("add this recipient to the server's `recipients`:");
        println!("{}", identity.recipient());
        Ok(())
    }

    /// The recipient of the worker identity at `path`, generating the identity first if `generate`.
    pub fn worker_recipient(path: &Path, generate: bool) -> anyhow::Result<String> {
        let identity = if generate {
            readroom_worker::keys::generate(path)?
        } else {
            readroom_worker::keys::load(path)?
        };
        Ok(identity.recipient())
    }

    /// `readroom demo`.
    pub async fn demo(config: Config) -> anyhow::Result<()> {
        crate::demo::run(config).await
    }

    /// `readroom worker`: a worker process until SIGTERM or Ctrl-C, then a drain.
    pub async fn worker(mut config: Config, args: WorkerArgs) -> anyhow::Result<()> {
        if let Some(listen) = args.listen {
            config.worker.listen = listen;
        }
        if let Some(id) = args.id {
            config.worker.id = id;
        }
        if !args.servers.is_empty() {
            config.worker.servers = args.servers;
        }
        if let Some(key) = args.server_key {
            config.worker.server_key = key;
        }
        if let Some(url) = args.advertise {
            config.worker.advertise_url = url;
        }
        let control_seed = crate::auth::keys::load_or_create_seed(
            &config.worker_control_key_path(),
            "worker control key",
        )?;
        let reporter = readroom_worker::node::Reporter::new(Vec::new(), &control_seed);
        if args.print_key {
            println!("{}", reporter.public_key_hex());
            return Ok(());
        }
        let settings = &config.worker;
        if settings.servers.is_empty() {
            anyhow::bail!("no server to register with: give --server URL (or worker.servers)");
        }
        let server_key = readroom_domain::control_auth::parse_public_key(&settings.server_key)
            .map_err(|err| anyhow::anyhow!("worker.server_key (--server-key): {err}"))?;
        let verifier = readroom_domain::ticket::TicketVerifier::from_public_key(&server_key)
            .map_err(|err| anyhow::anyhow!("worker.server_key: {err}"))?;
        let id = if settings.id.is_empty() {
            std::fs::read_to_string("/etc/hostname")
                .map(|name| name.trim().to_owned())
                .ok()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "worker".to_owned())
        } else {
            settings.id.clone()
        };
        if let Some(listen) = settings.metrics_listen
            && let Some(handle) = crate::observability::install_recorder()
        {
            crate::observability::serve_worker_metrics(listen, handle).await?;
        }
        let store = crate::store::open(&config).await?;
        let mut stream = config.stream.clone();
        stream.watermark_key_file = worker_watermark_key(&config);
        let (streamer, events) = readroom_worker::node::streamer(
            stream,
            &config.worker_identity_path(),
            Arc::clone(&store),
            verifier,
            settings.allow_unhardened,
        )?;
        metrics::gauge!("readroom_worker_capacity").set(config.stream.max_sessions as f64);
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        eprintln!(
            "worker public key (servers' workers.trusted_keys): {}",
            reporter.public_key_hex()
        );
        let node = readroom_worker::node::NodeConfig {
            id,
            listen: settings.listen,
            advertise_url: settings.advertise_url.clone(),
            servers: settings.servers.clone(),
            server_key,
            control_seed,
            heartbeat: std::time::Duration::from_secs(settings.heartbeat_secs.max(1)),
            drain_timeout: std::time::Duration::from_secs(settings.drain_secs),
            stream: config.stream.clone(),
        };
        readroom_worker::node::run(
            node,
            streamer,
            events,
            listener,
            crate::serve::shutdown_signal(),
        )
        .await
    }
}

#[cfg(feature = "embedded-worker")]
pub use imp::*;

#[cfg(not(feature = "embedded-worker"))]
mod imp {
    use std::path::Path;

    use crate::cli::{KeygenArgs, WorkerArgs};
    use crate::config::Config;

    fn absent(command: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "`readroom {command}` is not in this build: it was built without the worker (feature `embedded-worker`); run it with the full readroom binary"
        )
    }

    /// Refused: no worker in this build.
    pub fn keygen(_config: &Config, _args: KeygenArgs) -> anyhow::Result<()> {
        Err(absent("keygen"))
    }

    /// Refused: no worker in this build.
    pub fn watermark_decode(
        _config: &Config,
        _key_file: Option<&Path>,
        _path: &Path,
    ) -> anyhow::Result<[u8; 8]> {
        Err(absent("watermark decode"))
    }

    /// Refused: no worker (and no decryptor) in this build.
    pub async fn rerender_sha256(
        _config: &Config,
        _identity: Option<&Path>,
        _key_file: Option<&Path>,
        _frame: crate::forensics_cmd::FrameToRender,
    ) -> anyhow::Result<String> {
        Err(absent("grade verify"))
    }

    /// Refused: no worker in this build.
    pub fn worker_recipient(_path: &Path, _generate: bool) -> anyhow::Result<String> {
        Err(absent("demo"))
    }

    /// Refused: no worker in this build.
    pub async fn demo(_config: Config) -> anyhow::Result<()> {
        Err(absent("demo"))
    }

    /// Refused: no worker in this build.
    pub async fn worker(_config: Config, _args: WorkerArgs) -> anyhow::Result<()> {
        Err(absent("worker"))
    }
}

#[cfg(not(feature = "embedded-worker"))]
pub use imp::*;
