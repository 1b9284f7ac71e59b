//! Permissions: what an API key may do, as `resource:action[:scope]`.
//!
//! `*` stands for one whole segment (`orders:*`, `*:read`); a permission without a scope grants
//! every scope (`orders:complete` completes anyone's orders), one with a scope grants only that
//! owner's (`orders:complete:trader-5`), and `*` alone grants everything. The scope `*` grants
//! any one owner's needs but not a need that names no owner (it is one whole segment, and such a
//! need has none). The old scope `read` is `*:read`.
//!
//! A handler asks for a [`Need`]: a resource and an action, and the owner's id where the command
//! concerns one owner (a store, a trader, a client). Matching is pure: no I/O, no clock.
//!
//! A permission is *known* when some declared pair matches its resource and action: every
//! domain declares its pairs next to its commands (`SCOPES`, summed by
//! [`crate::domain::scopes`]) and the platform declares its own in [`PLATFORM`]. Scopes are owner
//! ids, free but checked for shape.
//!
//! A role's permission may be a template: `{scope}` as its whole scope (`orders:create:{scope}`)
//! stands for the owner a key's grant binds the role to ([`RolePermission::bind`]). Only a role
//! holds one; a key's own permissions name their owners, so [`Permission::parse`] refuses it.

use std::fmt;

/// What a handler asks a key for: `resource:action`, and the owner the command concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Need<'a> {
    pub resource: &'a str,
    pub action: &'a str,
    pub scope: Option<&'a str>,
}

impl Need<'static> {
    /// A need that names no owner; declared as a constant by the domain or platform it belongs to.
    pub const fn new(resource: &'static str, action: &'static str) -> Need<'static> {
        Need { resource, action, scope: None }
    }

    /// Reading `resource`: `{resource}:read`.
    pub const fn read(resource: &'static str) -> Need<'static> {
        Need::new(resource, READ)
    }
}

impl<'a> Need<'a> {
    /// The same need for one owner's entity (`orders:complete:trader-5`).
    pub fn of<'b>(self, owner: &'b str) -> Need<'b>
    where
        'a: 'b,
    {
        Need { resource: self.resource, action: self.action, scope: Some(owner) }
    }
}

impl fmt::Display for Need<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)?;
        match self.scope {
            Some(scope) => write!(f, ":{scope}"),
            None => Ok(()),
        }
    }
}

/// The action of every read.
pub const READ: &str = "read";
/// The one segment that matches any.
pub const ANY: &str = "*";
/// A role's placeholder scope: the owner its grant binds it to.
pub const PLACEHOLDER: &str = "{scope}";

/// The platform's own resources and actions (keys, roles, config, audit, webhooks).
pub mod platform {
    use super::Need;

    /// Create, list and revoke API keys, and set roles (`/v1/admin/…`).
    pub const KEYS_WRITE: Need<'static> = Need::new("keys", "write");
    pub const KEYS_READ: Need<'static> = Need::new("keys", "read");
    pub const ROLES_WRITE: Need<'static> = Need::new("roles", "write");
    pub const ROLES_READ: Need<'static> = Need::new("roles", "read");
    pub const CONFIG_WRITE: Need<'static> = Need::new("config", "write");
    pub const CONFIG_READ: Need<'static> = Need::new("config", "read");
    pub const AUDIT_READ: Need<'static> = Need::new("audit", "read");
    pub const WEBHOOKS_WRITE: Need<'static> = Need::new("webhooks", "write");
    pub const WEBHOOKS_READ: Need<'static> = Need::new("webhooks", "read");
}

/// Every pair the platform declares.
pub const PLATFORM: &[Need<'static>] = &[
    platform::KEYS_WRITE,
    platform::KEYS_READ,
    platform::ROLES_WRITE,
    platform::ROLES_READ,
    platform::CONFIG_WRITE,
    platform::CONFIG_READ,
    platform::AUDIT_READ,
    platform::WEBHOOKS_WRITE,
    platform::WEBHOOKS_READ,
];

/// Every declared `resource:action` pair: the domains' and the platform's.
pub fn declared() -> impl Iterator<Item = Need<'static>> {
    crate::domain::scopes().chain(PLATFORM.iter().copied())
}

/// Why a permission was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error(
        "{0:?} is not a permission: resource:action[:scope], resource and action 1 to 32 of a-z 0-9 _ - (starting with a letter) or *, the scope 1 to 64 of A-Z a-z 0-9 . _ - or *"
    )]
    Malformed(String),
    #[error("unknown permission {0:?}: no domain or platform part declares its resource and action")]
    Unknown(String),
    #[error(
        "{0:?} has the scope {{scope}}, which only a role's permission may have (a key holds the role bound to an owner, role:scope); a key's own permission names its owner"
    )]
    Placeholder(String),
}

impl PermissionError {
    /// The permission as it was given.
    pub fn permission(&self) -> &str {
        match self {
            PermissionError::Malformed(p) | PermissionError::Unknown(p) | PermissionError::Placeholder(p) => p,
        }
    }
}

/// One permission: `resource:action[:scope]`, each segment a name or `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    resource: String,
    action: String,
    scope: Option<String>,
}

fn is_name(s: &str) -> bool {
    s == ANY
        || ((1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'))
}

/// An owner id as a scope segment: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn is_owner(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn segment_matches(granted: &str, needed: &str) -> bool {
    granted == ANY || granted == needed
}

/// A permission's segments, checked for shape, with `{scope}` left to the caller to accept.
fn segments(s: &str) -> Result<(&str, &str, Option<&str>), PermissionError> {
    let malformed = || PermissionError::Malformed(s.to_owned());
    let (resource, action, scope) = match s.split(':').collect::<Vec<_>>()[..] {
        [ANY] => (ANY, ANY, None),
        [READ] => (ANY, READ, None),
        [resource, action] => (resource, action, None),
        [resource, action, scope] => (resource, action, Some(scope)),
        _ => return Err(malformed()),
    };
    let scope_ok = |s: &str| s == ANY || s == PLACEHOLDER || is_owner(s);
    if !is_name(resource) || !is_name(action) || scope.is_some_and(|s| !scope_ok(s)) {
        return Err(malformed());
    }
    Ok((resource, action, scope))
}

/// Whether some domain or the platform declares a pair that `resource:action` matches.
fn is_declared(resource: &str, action: &str) -> bool {
    declared().any(|d| segment_matches(resource, d.resource) && segment_matches(action, d.action))
}

impl Permission {
    /// Checks the shape only: `resource:action[:scope]`, or `*`, or the old `read`. The scope
    /// `{scope}` is a role's only (`PermissionError::Placeholder`).
    pub fn parse(s: &str) -> Result<Permission, PermissionError> {
        let (resource, action, scope) = segments(s)?;
        if scope == Some(PLACEHOLDER) {
            return Err(PermissionError::Placeholder(s.to_owned()));
        }
        Ok(Permission { resource: resource.to_owned(), action: action.to_owned(), scope: scope.map(str::to_owned) })
    }

    /// Checks the shape and that some domain or the platform declares its resource and action.
    pub fn parse_known(s: &str) -> Result<Permission, PermissionError> {
        let permission = Permission::parse(s)?;
        if is_declared(&permission.resource, &permission.action) {
            Ok(permission)
        } else {
            Err(PermissionError::Unknown(s.to_owned()))
        }
    }

    /// Whether this permission grants `need`.
    pub fn grants(&self, need: &Need<'_>) -> bool {
        self.grants_in_some_scope(need)
            && match (self.scope.as_deref(), need.scope) {
                (None, _) => true,
                (Some(ANY), needed) => needed.is_some(),
                (Some(granted), needed) => needed == Some(granted),
            }
    }

    /// Whether this permission grants `need` for at least one owner: what a handler checks
    /// before it has read which owner the command concerns.
    pub fn grants_in_some_scope(&self, need: &Need<'_>) -> bool {
        segment_matches(&self.resource, need.resource) && segment_matches(&self.action, need.action)
    }

    /// Whether it grants some read (`…:read` or `…:*`).
    pub fn reads(&self) -> bool {
        segment_matches(&self.action, READ)
    }
}

impl fmt::Display for Permission {
    /// The canonical form: `*` for everything, else `resource:action[:scope]` (`read` is `*:read`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.resource.as_str(), self.action.as_str(), self.scope.as_deref()) {
            (ANY, ANY, None) => f.write_str(ANY),
            (resource, action, None) => write!(f, "{resource}:{action}"),
            (resource, action, Some(scope)) => write!(f, "{resource}:{action}:{scope}"),
        }
    }
}

/// A role's permission: a permission, or a template whose whole scope is `{scope}`
/// (`orders:create:{scope}`), which grants nothing until a grant binds it to an owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RolePermission(Held);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Held {
    Fixed(Permission),
    Template { resource: String, action: String },
}

impl RolePermission {
    /// Checks the shape only: what `Permission::parse` takes, or `resource:action:{scope}`.
    pub fn parse(s: &str) -> Result<RolePermission, PermissionError> {
        match segments(s)? {
            (resource, action, Some(PLACEHOLDER)) => {
                Ok(RolePermission(Held::Template { resource: resource.to_owned(), action: action.to_owned() }))
            }
            _ => Permission::parse(s).map(|p| RolePermission(Held::Fixed(p))),
        }
    }

    /// Checks the shape and that some domain or the platform declares its resource and action.
    pub fn parse_known(s: &str) -> Result<RolePermission, PermissionError> {
        let permission = RolePermission::parse(s)?;
        let known = match &permission.0 {
            Held::Fixed(p) => is_declared(&p.resource, &p.action),
            Held::Template { resource, action } => is_declared(resource, action),
        };
        if known { Ok(permission) } else { Err(PermissionError::Unknown(s.to_owned())) }
    }

    /// Whether its scope is `{scope}`.
    pub fn is_template(&self) -> bool {
        matches!(self.0, Held::Template { .. })
    }

    /// What it grants to a key that holds its role plainly (`owner` none) or bound to `owner`: a
    /// permission as it is, whoever the owner; a template only bound, with the owner as its scope
    /// (none for an owner that is not a scope segment: `{scope}` never stands for `*`).
    pub fn bind(&self, owner: Option<&str>) -> Option<Permission> {
        match (&self.0, owner) {
            (Held::Fixed(p), _) => Some(p.clone()),
            (Held::Template { resource, action }, Some(owner)) if is_owner(owner) => {
                Some(Permission { resource: resource.clone(), action: action.clone(), scope: Some(owner.to_owned()) })
            }
            (Held::Template { .. }, _) => None,
        }
    }
}

impl fmt::Display for RolePermission {
    /// The canonical form: a permission's, or `resource:action:{scope}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Held::Fixed(p) => p.fmt(f),
            Held::Template { resource, action } => write!(f, "{resource}:{action}:{PLACEHOLDER}"),
        }
    }
}

/// What a set of permissions grants: the key's own and its roles'.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions(Vec<Permission>);

impl Permissions {
    pub fn new(permissions: Vec<Permission>) -> Permissions {
        Permissions(permissions)
    }

    pub fn grants(&self, need: &Need<'_>) -> bool {
        self.0.iter().any(|p| p.grants(need))
    }

    pub fn grants_in_some_scope(&self, need: &Need<'_>) -> bool {
        self.0.iter().any(|p| p.grants_in_some_scope(need))
    }

    pub fn reads_anything(&self) -> bool {
        self.0.iter().any(Permission::reads)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDERS_COMPLETE: Need<'static> = Need::new("orders", "complete");
    const ORDERS_RESOLVE: Need<'static> = Need::new("orders", "resolve");

    /// Whether `permission` grants each need, as `expect` says.
    fn check(permission: &str, expect: &[(Need<'_>, bool)]) {
        let p = Permission::parse(permission).unwrap();
        for (need, granted) in expect {
            assert_eq!(p.grants(need), *granted, "{permission} grants {need}: expected {granted}");
        }
    }

    #[test]
    fn wildcards_match_one_whole_segment_and_a_missing_scope_matches_every_scope() {
        let accounts_read = Need::read("accounts");
        let transfers_write = Need::new("transfers", "write");
        check(
            "orders:*",
            &[
                (ORDERS_COMPLETE, true),
                (ORDERS_COMPLETE.of("trader-5"), true),
                (ORDERS_RESOLVE.of("store-17"), true),
                (Need::read("orders"), true),
                (accounts_read, false),
                (Need::new("orderss", "complete"), false),
            ],
        );
        check(
            "*:read",
            &[
                (accounts_read, true),
                (Need::read("orders").of("store-17"), true),
                (transfers_write, false),
                (Need::new("accounts", "reads"), false),
            ],
        );
        check(
            "orders:resolve:store-17",
            &[
                (ORDERS_RESOLVE.of("store-17"), true),
                (ORDERS_RESOLVE.of("store-18"), false),
                (ORDERS_RESOLVE.of("store-1"), false),
                (ORDERS_RESOLVE, false),
                (ORDERS_COMPLETE.of("store-17"), false),
            ],
        );
        check(
            "orders:complete:trader-5",
            &[(ORDERS_COMPLETE.of("trader-5"), true), (ORDERS_COMPLETE.of("trader-6"), false)],
        );
        check("orders:complete:*", &[(ORDERS_COMPLETE.of("trader-6"), true), (ORDERS_COMPLETE, false)]);
        check("*:*:trader-5", &[(ORDERS_COMPLETE.of("trader-5"), true), (ORDERS_COMPLETE.of("trader-6"), false)]);
        check("*", &[(accounts_read, true), (transfers_write, true), (ORDERS_COMPLETE.of("trader-6"), true)]);
        check(
            "transfers:write",
            &[(transfers_write, true), (Need::new("accounts", "write"), false), (Need::read("transfers"), false)],
        );
    }

    #[test]
    fn the_old_scopes_are_permissions_of_the_same_form() {
        check(
            "read",
            &[(Need::read("accounts"), true), (Need::read("payouts"), true), (Need::new("accounts", "write"), false)],
        );
        assert_eq!(Permission::parse("read").unwrap().to_string(), "*:read");
        for scope in crate::domain::scopes() {
            let p = Permission::parse_known(&scope.to_string()).unwrap();
            assert!(p.grants(&scope), "{scope}");
            assert_eq!(p.to_string(), scope.to_string());
        }
    }

    #[test]
    fn shapes_are_checked() {
        for bad in [
            "",
            ":",
            "orders",
            "orders:",
            ":read",
            "orders:read:",
            "a:b:c:d",
            "Orders:read",
            "orders:re ad",
            "orders:read:store 17",
            "**:read",
            "orders:*x",
            "1orders:read",
            "orders:read:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(Permission::parse(bad), Err(PermissionError::Malformed(bad.to_owned())), "{bad:?}");
        }
        assert_eq!(Permission::parse("*:*").unwrap().to_string(), "*");
        for good in ["*", "*:read", "orders:resolve:store-17", "a:b:A.b_c-1", "x_y-z:w"] {
            assert_eq!(Permission::parse(good).unwrap().to_string(), good);
        }
    }

    #[test]
    fn a_permission_is_known_when_a_domain_or_the_platform_declares_its_resource_and_action() {
        for known in ["*", "*:read", "accounts:*", "accounts:write:pos-1", "keys:write", "*:redeem", "payouts:request"]
        {
            assert!(Permission::parse_known(known).is_ok(), "{known}");
        }
        for unknown in ["accounts:redeem", "nothing:read", "*:fly", "admin:*"] {
            assert_eq!(
                Permission::parse_known(unknown),
                Err(PermissionError::Unknown(unknown.to_owned())),
                "{unknown}"
            );
        }
        assert!(matches!(Permission::parse_known("x:"), Err(PermissionError::Malformed(_))));
        // Either refusal names the permission as it was given.
        assert_eq!(Permission::parse("Orders:read").unwrap_err().permission(), "Orders:read");
        assert_eq!(Permission::parse_known("nothing:read").unwrap_err().permission(), "nothing:read");
    }

    #[test]
    fn the_placeholder_is_a_roles_whole_scope_and_never_a_keys() {
        for template in ["orders:create:{scope}", "*:read:{scope}", "orders:*:{scope}", "*:*:{scope}"] {
            let p = RolePermission::parse_known(template).unwrap();
            assert!(p.is_template(), "{template}");
            assert_eq!(p.to_string(), template);
            assert_eq!(Permission::parse(template), Err(PermissionError::Placeholder(template.to_owned())));
            assert_eq!(Permission::parse_known(template), Err(PermissionError::Placeholder(template.to_owned())));
        }
        assert!(PermissionError::Placeholder("orders:create:{scope}".into()).to_string().contains("role:scope"));
        // Only the whole scope segment, spelt exactly.
        for bad in [
            "{scope}",
            "orders:{scope}",
            "{scope}:read",
            "orders:{scope}:x",
            "orders:create:x{scope}",
            "orders:create:{scope}x",
            "orders:create:{scope}:x",
            "orders:create:{Scope}",
            "orders:create:{}",
            "orders:create:{store}",
        ] {
            assert_eq!(RolePermission::parse(bad), Err(PermissionError::Malformed(bad.to_owned())), "{bad:?}");
        }
        for unknown in ["nothing:read:{scope}", "nothing:read", "accounts:redeem:s1"] {
            assert_eq!(RolePermission::parse_known(unknown), Err(PermissionError::Unknown(unknown.to_owned())));
        }
        // Whatever a key may hold, a role may hold the same, and it is no template.
        for plain in ["*", "read", "orders:read", "orders:read:store-17", "orders:complete:*"] {
            let p = RolePermission::parse_known(plain).unwrap();
            assert!(!p.is_template(), "{plain}");
            assert_eq!(p.to_string(), Permission::parse(plain).unwrap().to_string());
        }
        assert_eq!(RolePermission::parse("Orders:read"), Err(PermissionError::Malformed("Orders:read".into())));
    }

    #[test]
    fn a_template_grants_only_bound_and_then_its_owners_alone() {
        let create = Need::new("orders", "create");
        let template = RolePermission::parse("orders:create:{scope}").unwrap();
        assert_eq!(template.bind(None), None, "a plain grant grants no template");
        let bound = template.bind(Some("store-17")).unwrap();
        assert_eq!(bound.to_string(), "orders:create:store-17");
        assert!(bound.grants(&create.of("store-17")));
        assert!(!bound.grants(&create.of("store-18")));
        assert!(!bound.grants(&create), "nor a need that names no owner");
        for not_an_owner in ["*", "a b", "", "{scope}", "x:y"] {
            assert_eq!(template.bind(Some(not_an_owner)), None, "{not_an_owner:?}");
        }
        // A role's other permissions are what they say, however the role is held.
        for (plain, owner) in [("orders:read", None), ("orders:read", Some("store-17")), ("orders:read:s1", Some("s2"))]
        {
            let p = RolePermission::parse(plain).unwrap();
            assert_eq!(p.bind(owner), Some(Permission::parse(plain).unwrap()), "{plain} bound to {owner:?}");
        }
    }

    #[test]
    fn a_set_grants_what_one_of_its_permissions_grants() {
        let set = Permissions::new(vec![
            Permission::parse("orders:complete:trader-5").unwrap(),
            Permission::parse("accounts:read").unwrap(),
        ]);
        assert!(set.grants(&ORDERS_COMPLETE.of("trader-5")));
        assert!(!set.grants(&ORDERS_COMPLETE.of("trader-6")));
        assert!(!set.grants(&ORDERS_COMPLETE));
        assert!(set.grants_in_some_scope(&ORDERS_COMPLETE));
        assert!(!set.grants_in_some_scope(&ORDERS_RESOLVE));
        assert!(set.reads_anything());
        assert!(!Permissions::new(vec![Permission::parse("transfers:write").unwrap()]).reads_anything());
        assert!(!Permissions::default().grants(&Need::read("accounts")));
        let listed: Vec<String> = set.iter().map(Permission::to_string).collect();
        assert_eq!(listed, ["orders:complete:trader-5", "accounts:read"]);
    }
}
