//! The administrator's tenancy settings, out of tenants' reach (operator flags and a file
//! the chart mounts): which NATS identity each namespace uses, which bucket names it may
//! name, and which servers a `spec.connection` may send to. With none of them set, every
//! namespace uses the operator's connection and may name any bucket (a single-tenant
//! install, as before).

use crate::nats::ConnectionSettings;

/// What is wrong with a tenants file (read by `tenants_file` into a [`Tenancy`]).
#[derive(Debug, thiserror::Error)]
#[error("tenants file {path}: {message}")]
pub struct TenantsFileError {
    pub path: String,
    pub message: String,
}

/// Where a `spec.connection` may point its `servers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ObjectServers {
    /// Any server, always with the object's own credentials only.
    #[default]
    Any,
    /// None: objects use the connection the administrator gave their namespace.
    Forbidden,
    /// Only these (normalized by [`normalize_server`]).
    Listed(Vec<String>),
}

/// Everything the administrator decided about tenants.
#[derive(Debug, Clone, Default)]
pub struct Tenancy {
    pub object_servers: ObjectServers,
    /// First match wins; empty: every namespace is the operator's own tenant.
    pub tenants: Vec<Tenant>,
}

/// One rule of the tenants file.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub namespaces: Vec<Pattern>,
    /// Bucket names objects of these namespaces may name (`spec.bucket`, a mirror or a
    /// source).
    pub buckets: Vec<Pattern>,
    /// The NATS identity of these namespaces; `None`: the operator's own.
    pub connection: Option<ConnectionSettings>,
}

/// Why the tenancy settings (or another namespace's claim) refuse an object: a condition
/// reason and a message that names what decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "spec.connection.servers: {server:?} is not allowed by the operator's --allowed-object-servers ({allowed})"
    )]
    ServerNotListed { server: String, allowed: String },
    #[error(
        "spec.connection.servers: this operator does not let objects name servers (--forbid-object-servers); remove servers to use the connection the administrator set for this namespace"
    )]
    ServersForbidden,
    #[error(
        "namespace {namespace:?} is not in the operator's tenants file, so it may not use NATS; ask the administrator to add it"
    )]
    NamespaceNotListed { namespace: String },
    #[error(
        "{field}: bucket {bucket:?} is not among the names namespace {namespace:?} may use ({allowed})"
    )]
    BucketNotAllowed {
        field: String,
        bucket: String,
        namespace: String,
        allowed: String,
    },
    #[error(
        "{field}: bucket {bucket:?} is claimed by {holder}, an object of another namespace: a mirror or source of it would copy its data"
    )]
    OriginHeldElsewhere {
        field: String,
        bucket: String,
        holder: String,
    },
}

impl Refusal {
    /// The condition and Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::ServerNotListed { .. } | Refusal::ServersForbidden => "ServerNotAllowed",
            Refusal::NamespaceNotListed { .. } => "NamespaceNotAllowed",
            Refusal::BucketNotAllowed { .. } => "BucketNotAllowed",
            Refusal::OriginHeldElsewhere { .. } => "ClaimedElsewhere",
        }
    }
}

impl Tenancy {
    /// Whether a `spec.connection` may connect to `servers`.
    pub fn check_servers(&self, servers: &[String]) -> Result<(), Refusal> {
        match &self.object_servers {
            ObjectServers::Any => Ok(()),
            ObjectServers::Forbidden if servers.is_empty() => Ok(()),
            ObjectServers::Forbidden => Err(Refusal::ServersForbidden),
            ObjectServers::Listed(allowed) => servers
                .iter()
                .flat_map(|server| server.split(','))
                .map(str::trim)
                .filter(|server| !server.is_empty())
                .find(|server| !allowed.contains(&normalize_server(server)))
                .map_or(Ok(()), |server| {
                    Err(Refusal::ServerNotListed {
                        server: crate::nats::redact_url(server),
                        allowed: allowed.join(", "),
                    })
                }),
        }
    }

    /// The rule for `namespace`: `Ok(None)` when there are no rules at all.
    pub fn tenant(&self, namespace: &str) -> Result<Option<&Tenant>, Refusal> {
        if self.tenants.is_empty() {
            return Ok(None);
        }
        self.tenants
            .iter()
            .find(|tenant| tenant.namespaces.iter().any(|p| p.matches(namespace)))
            .map(Some)
            .ok_or_else(|| Refusal::NamespaceNotListed {
                namespace: namespace.to_string(),
            })
    }

    /// Whether an object of `namespace` may name `bucket` in `field`.
    pub fn check_bucket(&self, namespace: &str, field: &str, bucket: &str) -> Result<(), Refusal> {
        let Some(tenant) = self.tenant(namespace)? else {
            return Ok(());
        };
        if tenant.buckets.iter().any(|pattern| pattern.matches(bucket)) {
            return Ok(());
        }
        Err(Refusal::BucketNotAllowed {
            field: field.to_string(),
            bucket: bucket.to_string(),
            namespace: namespace.to_string(),
            allowed: if tenant.buckets.is_empty() {
                "none".into()
            } else {
                tenant
                    .buckets
                    .iter()
                    .map(|p| p.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }
}

/// A name pattern: `*` matches any run of characters, everything else itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub String);

impl Pattern {
    pub fn matches(&self, text: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = text.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty();
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// A server URL as compared with the allowed list: no user info, scheme and host in
/// lower case, the default scheme (`nats`) and port (4222) spelled out.
pub fn normalize_server(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("nats".to_string(), url),
    };
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host_port = host_port.to_ascii_lowercase();
    let has_port = match host_port.rsplit_once(':') {
        // `[::1]` alone has colons but no port.
        Some((host, port)) => {
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.is_empty()
        }
        None => false,
    };
    if has_port {
        format!("{scheme}://{host_port}")
    } else {
        format!("{scheme}://{host_port}:4222")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_with_stars_anywhere_and_nothing_else() {
        let cases = [
            ("team-a", "team-a", true),
            ("team-a", "team-ab", false),
            ("team-*", "team-a", true),
            ("team-*", "team-", true),
            ("team-*", "tea", false),
            ("*", "", true),
            ("*-flags", "shop-flags", true),
            ("*-flags", "shop-flag", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                Pattern(pattern.into()).matches(text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn listed_servers_compare_without_user_info_case_or_default_port() {
        assert_eq!(
            normalize_server("NATS://Nats.Example:4222/"),
            "nats://nats.example:4222"
        );
        assert_eq!(normalize_server("nats.example"), "nats://nats.example:4222");
        assert_eq!(
            normalize_server("tls://u:p@nats.example:7422"),
            "tls://nats.example:7422"
        );
        assert_eq!(normalize_server("nats://[::1]"), "nats://[::1]:4222");
        let tenancy = Tenancy {
            object_servers: ObjectServers::Listed(vec![normalize_server(
                "nats://nats.shared:4222",
            )]),
            tenants: Vec::new(),
        };
        assert_eq!(
            tenancy.check_servers(&["nats://user:pw@NATS.shared".into()]),
            Ok(())
        );
        let refused = tenancy
            .check_servers(&["nats://nats.shared:4222,nats://evil:4222".into()])
            .expect_err("evil is not listed");
        assert_eq!(refused.reason(), "ServerNotAllowed");
        assert!(
            refused.to_string().contains("nats://evil:4222"),
            "{refused}"
        );
        let forbidden = Tenancy {
            object_servers: ObjectServers::Forbidden,
            tenants: Vec::new(),
        };
        assert_eq!(forbidden.check_servers(&[]), Ok(()));
        assert_eq!(
            forbidden.check_servers(&["nats://x".into()]),
            Err(Refusal::ServersForbidden)
        );
    }

    #[test]
    fn the_first_matching_rule_decides_and_an_unlisted_namespace_is_refused() {
        let rule = |namespaces: &[&str], buckets: &[&str]| Tenant {
            namespaces: namespaces.iter().map(|n| Pattern(n.to_string())).collect(),
            buckets: buckets.iter().map(|b| Pattern(b.to_string())).collect(),
            connection: None,
        };
        let tenancy = Tenancy {
            object_servers: ObjectServers::Any,
            tenants: vec![
                rule(&["team-a"], &["payments", "a-*"]),
                rule(&["team-*"], &["shared-*"]),
            ],
        };
        assert_eq!(
            tenancy.check_bucket("team-a", "spec.bucket", "payments"),
            Ok(())
        );
        assert_eq!(tenancy.check_bucket("team-a", "spec.bucket", "a-x"), Ok(()));
        let refused = tenancy
            .check_bucket("team-b", "spec.bucket", "payments")
            .expect_err("team-b may not name payments");
        assert_eq!(refused.reason(), "BucketNotAllowed");
        assert!(refused.to_string().contains("shared-*"), "{refused}");
        assert_eq!(
            tenancy.check_bucket("team-b", "spec.mirror.name", "shared-1"),
            Ok(())
        );
        assert_eq!(
            tenancy
                .check_bucket("other", "spec.bucket", "x")
                .map_err(|r| r.reason()),
            Err("NamespaceNotAllowed")
        );
        assert_eq!(
            Tenancy::default().check_bucket("any", "spec.bucket", "any"),
            Ok(())
        );
    }
}
