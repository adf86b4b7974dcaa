//! A real browser for the portal's tests: Debian's Chromium, driven through its
//! chromedriver (WebDriver) by fantoccini. Each test gets its own chromedriver and
//! headless Chromium; at most two run at once, as the machines have two cores.
//!
//! Without `chromium` and `chromedriver` a test is skipped with one line, as the
//! PostgreSQL suites are; in CI (`CI=true`) their absence is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::receiver::PATIENCE;

static BROWSERS: Semaphore = Semaphore::const_new(2);

pub struct Browser {
    pub client: Client,
    driver: Child,
    _permit: SemaphorePermit<'static>,
}

fn tool(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    path.exists().then_some(path)
}

/// Where the tests save a screenshot of each page they visit (outside the repository).
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("HOOKD_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("hookd-portal-screenshots"))
}

impl Browser {
    /// A fresh headless Chromium, `width` CSS pixels wide; `None` (skipped) where the
    /// machine has no Chromium, outside CI.
    pub async fn start(width: u32) -> Option<Self> {
        let chromium = tool("HOOKD_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("HOOKD_CHROMEDRIVER", "/usr/bin/chromedriver");
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs Debian's chromium and chromium-driver for the portal's browser tests"
            );
            eprintln!(
                "skipped: the portal's browser tests need chromium and chromedriver (apt install chromium chromium-driver)"
            );
            return None;
        };
        let permit = BROWSERS.acquire().await.expect("the semaphore is never closed");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let client = connect(port, &chromium, width).await;
        Some(Self { client, driver, _permit: permit })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits for an element to be shown.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
    }

    /// Waits until an element's text contains `text`; returns the whole text.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(shown) = element.text().await
                && shown.contains(text)
            {
                return shown;
            }
            if std::time::Instant::now() > deadline {
                let body = self.body_text().await;
                panic!("{css} never showed {text:?}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|error| panic!("click {css}: {error}"));
    }

    /// Clicks the first button whose text is `label`.
    pub async fn click_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space(.)='{label}'] | //a[normalize-space(.)='{label}']");
        let button = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|error| panic!("no button {label:?}: {error}"));
        button.click().await.unwrap_or_else(|error| panic!("click {label:?}: {error}"));
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    /// Answers the next `confirm()` with OK (the page asks before it deletes, rotates
    /// or resends).
    pub async fn accept_confirms(&self) {
        self.client.execute("window.confirm = () => true; return true;", vec![]).await.expect("script");
    }

    pub async fn current_url(&self) -> String {
        self.client.current_url().await.expect("url").to_string()
    }

    /// Saves a screenshot as `<dir>/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

async fn connect(port: u16, chromium: &Path, width: u32) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},900"), "--no-first-run", "--disable-extensions"],
        }),
    );
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return client,
            Err(error) if std::time::Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("chromedriver did not start a browser: {error}"),
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("addr").port()
}
