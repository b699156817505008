//! HTTP helpers shared by pages and feeds: validators for conditional GET, cache headers,
//! and a cache of rendered bodies keyed by their entity tag.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use actix_web::http::header::{self, EntityTag, HttpDate};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

/// A request's conditional headers, taken out of the request so database work on another
/// thread can answer 304 before loading anything else.
#[derive(Debug, Clone, Default)]
pub struct Conditional {
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
}

impl Conditional {
    /// The conditional headers of a request.
    pub fn of(req: &HttpRequest) -> Self {
        let text = |name| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            if_none_match: text(header::IF_NONE_MATCH),
            if_modified_since: text(header::IF_MODIFIED_SINCE),
        }
    }
}

/// What identifies one version of a resource, known before its body is built.
#[derive(Debug, Clone)]
pub struct Validators {
    /// A strong entity tag.
    pub etag: EntityTag,
    /// When the resource last changed, to the second.
    pub last_modified: Option<HttpDate>,
}

impl Validators {
    /// Validators from the facts a response depends on (ids, timestamps, page number)
    /// and its last change.
    pub fn new(parts: &[&str], last_modified: Option<NaiveDateTime>) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        let digest = hasher.finalize();
        let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let last_modified = last_modified.and_then(|t| {
            let secs = u64::try_from(t.and_utc().timestamp()).ok()?;
            Some(HttpDate::from(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            ))
        });
        Self {
            etag: EntityTag::new_strong(tag),
            last_modified,
        }
    }

    /// Whether the client's copy is current (RFC 9110 §13.2.2: `If-None-Match` wins over
    /// `If-Modified-Since`).
    pub fn is_fresh(&self, req: &HttpRequest) -> bool {
        self.matches(&Conditional::of(req))
    }

    /// As [`Validators::is_fresh`], for headers taken out of the request.
    pub fn matches(&self, conditional: &Conditional) -> bool {
        if let Some(text) = &conditional.if_none_match {
            if text.trim() == "*" {
                return true;
            }
            return text
                .split(',')
                .filter_map(|t| t.trim().parse::<EntityTag>().ok())
                .any(|t| t.weak_eq(&self.etag));
        }
        if let (Some(text), Some(modified)) = (&conditional.if_modified_since, self.last_modified)
            && let Ok(since) = text.parse::<HttpDate>()
        {
            return std::time::SystemTime::from(modified) <= std::time::SystemTime::from(since);
        }
        false
    }

    /// The cache key for the body these validators describe.
    pub fn key(&self) -> &str {
        self.etag.tag()
    }

    /// A `304 Not Modified` carrying these validators.
    pub fn not_modified(&self, cache_control: &'static str) -> HttpResponse {
        let mut response = HttpResponse::NotModified();
        self.apply(&mut response, cache_control);
        response.finish()
    }

    /// A `200 OK` with this body, content type and these validators.
    pub fn ok(
        &self,
        content_type: &str,
        cache_control: &'static str,
        body: impl actix_web::body::MessageBody + 'static,
    ) -> HttpResponse {
        let mut response = HttpResponse::Ok();
        response.content_type(content_type.to_owned());
        self.apply(&mut response, cache_control);
        response.body(body)
    }

    fn apply(&self, response: &mut actix_web::HttpResponseBuilder, cache_control: &'static str) {
        response.insert_header(header::ETag(self.etag.clone()));
        // Blog and post addresses also answer ActivityStreams JSON to servers that ask.
        response.insert_header((header::VARY, "Accept"));
        if let Some(modified) = self.last_modified {
            response.insert_header(header::LastModified(modified));
        }
        response.insert_header((header::CACHE_CONTROL, cache_control));
    }
}

/// What a conditional GET found: the client's copy is current, a rendered body is
/// cached, or the data to render.
pub enum Fetched<T> {
    /// Answer 304.
    NotModified(Validators),
    /// Answer with this body.
    Cached(Validators, Bytes),
    /// Render this.
    Changed(Validators, T),
}

impl<T> Fetched<T> {
    /// Decides, once the validators are known, whether anything more must be loaded.
    /// Call inside the database work, so a 304 or a cache hit skips the rest.
    pub fn check<E>(
        validators: Validators,
        conditional: &Conditional,
        cache: &RenderCache,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<Self, E> {
        if validators.matches(conditional) {
            return Ok(Self::NotModified(validators));
        }
        if let Some(body) = cache.get(validators.key()) {
            return Ok(Self::Cached(validators, body));
        }
        Ok(Self::Changed(validators, load()?))
    }

    /// The response: 304, the cached body, or the body rendered now (and cached).
    pub fn respond(
        self,
        content_type: &str,
        cache: &RenderCache,
        render: impl FnOnce(T) -> Result<String, crate::error::AppError>,
    ) -> Result<HttpResponse, crate::error::AppError> {
        Ok(match self {
            Self::NotModified(validators) => validators.not_modified(PUBLIC_CACHE),
            Self::Cached(validators, body) => validators.ok(content_type, PUBLIC_CACHE, body),
            Self::Changed(validators, data) => {
                let body = Bytes::from(render(data)?);
                cache.put(validators.key(), body.clone());
                validators.ok(content_type, PUBLIC_CACHE, body)
            }
        })
    }
}

/// Public pages and feeds: shared caches may keep them a minute, then must revalidate.
pub const PUBLIC_CACHE: &str = "public, max-age=60, must-revalidate";

/// Rendered pages and feeds by entity tag (bodies are `Bytes`: a hit is sent without a
/// copy). A tag names one exact body (it is derived from
/// everything the body shows), so a hit is always right, on any node; a change to the
/// content makes a new tag and the old entry simply ages out. Bounded by total size.
pub struct RenderCache {
    inner: Mutex<CacheInner>,
    budget: usize,
}

#[derive(Default)]
struct CacheInner {
    bodies: HashMap<String, Bytes>,
    order: VecDeque<String>,
    size: usize,
}

impl RenderCache {
    /// A cache holding at most `budget` bytes of bodies.
    pub fn new(budget: usize) -> Self {
        Self {
            inner: Mutex::new(CacheInner::default()),
            budget,
        }
    }

    /// The body rendered for this tag, if kept.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.lock().bodies.get(key).cloned()
    }

    /// Keeps a rendered body, dropping the oldest entries to stay in budget.
    pub fn put(&self, key: &str, body: Bytes) {
        if body.len() > self.budget / 8 {
            return;
        }
        let mut inner = self.lock();
        if inner.bodies.contains_key(key) {
            return;
        }
        inner.size += body.len();
        inner.order.push_back(key.to_owned());
        inner.bodies.insert(key.to_owned(), body);
        while inner.size > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.bodies.remove(&oldest) {
                inner.size -= old.len();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding the lock leaves a consistent map (each step is whole).
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keeps_to_its_budget() {
        let cache = RenderCache::new(80);
        cache.put("a", Bytes::from_static(b"0123456789"));
        cache.put("b", Bytes::from_static(b"0123456789"));
        assert!(cache.get("a").is_some());
        for n in 0..10 {
            cache.put(&format!("k{n}"), Bytes::from_static(b"0123456789"));
        }
        assert!(cache.get("a").is_none(), "oldest dropped");
        assert!(cache.get("k9").is_some());
        cache.put("huge", Bytes::from("x".repeat(50)));
        assert!(cache.get("huge").is_none(), "too large to keep");
    }

    #[test]
    fn conditional_headers() {
        let v = Validators::new(&["x"], None);
        let tag = format!("\"{}\"", v.key());
        let fresh = Conditional {
            if_none_match: Some(tag),
            if_modified_since: None,
        };
        assert!(v.matches(&fresh));
        assert!(!v.matches(&Conditional::default()));
        let other = Conditional {
            if_none_match: Some("\"nope\"".into()),
            if_modified_since: None,
        };
        assert!(!v.matches(&other));
    }
}
