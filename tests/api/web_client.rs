//! A browser as the HTML faces see it, without a browser: it keeps cookies, follows
//! redirects when asked, and posts forms with the CSRF token read from the page, as a
//! browser posting a page's form would.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// What a request answered.
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// `Location` of a redirect.
    pub location: Option<String>,
}

pub struct WebClient {
    base: String,
    client: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl WebClient {
    pub fn new(base: &str) -> WebClient {
        WebClient {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Mutex::default(),
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A cookie's value, as the browser keeps it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// Puts a cookie in the jar, as someone who copied it would.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .unwrap()
            .insert(name.to_string(), value.to_string());
    }

    /// The cookies a browser would keep of an answer (a removal drops one).
    async fn answer(&self, response: reqwest::Response) -> Answer {
        for set in response.headers().get_all("set-cookie") {
            let text = set.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let removed = value.is_empty() || attributes.to_ascii_lowercase().contains("max-age=0");
            let mut cookies = self.cookies.lock().unwrap();
            if removed {
                cookies.remove(name.trim());
            } else {
                cookies.insert(name.trim().to_string(), value.to_string());
            }
        }
        Answer {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string()),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .client
            .get(self.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.answer(response).await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let response = self
            .client
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .form(fields)
            .send()
            .await
            .unwrap();
        self.answer(response).await
    }

    /// A page that must answer 200.
    pub async fn page(&self, path: &str) -> String {
        let answer = self.get(path).await;
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        answer.body
    }

    /// Posts a form of the page at `page` (its CSRF token with `fields`) to `action`.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let html = self.page(page).await;
        let csrf = csrf_of(&html);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    /// Opens a portal link (`/portal/enter?token=…` or its token) as a person does: the
    /// link's page, then its one button, which posts the token.
    pub async fn enter_portal(&self, link_or_token: &str) -> Answer {
        let token = link_or_token
            .rsplit_once("token=")
            .map_or(link_or_token, |(_, token)| token);
        let page = self.page(&format!("/portal/enter?token={token}")).await;
        assert!(page.contains("Open my account"), "{page}");
        self.post("/portal/enter", &[("token", token)]).await
    }

    /// Signs in to the dashboard; panics unless it succeeds.
    pub async fn sign_in(&self, email: &str, password: &str) {
        let answer = self
            .post(
                "/dashboard/sign-in",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(answer.status, 303, "sign-in: {}", answer.body);
        assert_eq!(answer.location.as_deref(), Some("/dashboard"));
    }
}

/// The CSRF token a page's forms carry.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in {html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}
