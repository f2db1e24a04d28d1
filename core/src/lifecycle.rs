//! PURE: lifecycle events, their order, and which revision's appspec and scripts run each event
//! (docs/behaviour/commands.md#lifecycle-events, docs/behaviour/hooks.md#revision-selection,
//! docs/behaviour/local-cli.md#local-argument-checks,
//! docs/behaviour/local-cli.md#local-deployment).
//!
//! Invariants: `revision_for` is the single place that decides which deployment directory an
//! event reads its appspec and scripts from; the local event list always contains
//! DownloadBundle before Install.

/// A canonical lifecycle event: the one list of them, in the in-place order
/// (docs/behaviour/commands.md#lifecycle-events). Custom events (any other name that passes
/// [`is_pascal_case`]) stay strings: they are whatever the deployment lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    BeforeBlockTraffic,
    AfterBlockTraffic,
    ApplicationStop,
    DownloadBundle,
    BeforeInstall,
    Install,
    AfterInstall,
    ApplicationStart,
    ValidateService,
    BeforeAllowTraffic,
    AfterAllowTraffic,
}

impl Event {
    /// Every canonical event in the order a deployment runs them.
    pub const ALL: [Event; 11] = [
        Event::BeforeBlockTraffic,
        Event::AfterBlockTraffic,
        Event::ApplicationStop,
        Event::DownloadBundle,
        Event::BeforeInstall,
        Event::Install,
        Event::AfterInstall,
        Event::ApplicationStart,
        Event::ValidateService,
        Event::BeforeAllowTraffic,
        Event::AfterAllowTraffic,
    ];

    /// The name the service, the appspec and the logs use.
    pub const fn name(self) -> &'static str {
        match self {
            Event::BeforeBlockTraffic => "BeforeBlockTraffic",
            Event::AfterBlockTraffic => "AfterBlockTraffic",
            Event::ApplicationStop => "ApplicationStop",
            Event::DownloadBundle => "DownloadBundle",
            Event::BeforeInstall => "BeforeInstall",
            Event::Install => "Install",
            Event::AfterInstall => "AfterInstall",
            Event::ApplicationStart => "ApplicationStart",
            Event::ValidateService => "ValidateService",
            Event::BeforeAllowTraffic => "BeforeAllowTraffic",
            Event::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    /// The canonical event spelled exactly `name` (names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name() == name)
    }

    /// DownloadBundle and Install: the agent's own work, which runs no user scripts (an appspec
    /// may not hook them); every other canonical event runs the appspec's scripts.
    pub const fn is_built_in(self) -> bool {
        matches!(self, Event::DownloadBundle | Event::Install)
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The names of `events`, for the string-typed lists (`const` so they are computed once).
const fn names<const N: usize>(events: [Event; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = events[i].name();
        i += 1;
    }
    out
}

/// The canonical events' names in the in-place order, used by the local tool.
pub const CANONICAL_EVENTS: [&str; 11] = names(Event::ALL);

/// The nine script hooks (the canonical events less the two built in), in order.
pub const HOOK_EVENTS: [Event; 9] = [
    Event::BeforeBlockTraffic,
    Event::AfterBlockTraffic,
    Event::ApplicationStop,
    Event::BeforeInstall,
    Event::AfterInstall,
    Event::ApplicationStart,
    Event::ValidateService,
    Event::BeforeAllowTraffic,
    Event::AfterAllowTraffic,
];

pub const DOWNLOAD_BUNDLE: &str = Event::DownloadBundle.name();
pub const INSTALL: &str = Event::Install.name();

/// Whether `event` names DownloadBundle or Install (see [`Event::is_built_in`]).
pub fn is_reserved(event: &str) -> bool {
    Event::from_name(event).is_some_and(Event::is_built_in)
}

pub fn is_canonical(event: &str) -> bool {
    Event::from_name(event).is_some()
}

/// The one spelling rule for event names, canonical or custom, wherever they come from (a
/// command, an appspec key, `--events`): PascalCase words (`[A-Z][a-z0-9]+`, one or more),
/// anchored at both ends (docs/behaviour/commands.md#command-dispatch).
pub fn is_pascal_case(name: &str) -> bool {
    let mut chars = name.chars().peekable();
    if name.is_empty() {
        return false;
    }
    while let Some(c) = chars.next() {
        if !c.is_ascii_uppercase() {
            return false;
        }
        let mut word_len = 0;
        while let Some(&n) = chars.peek() {
            if n.is_ascii_lowercase() || n.is_ascii_digit() {
                word_len += 1;
                chars.next();
            } else {
                break;
            }
        }
        if word_len == 0 {
            return false;
        }
    }
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentType {
    InPlace,
    BlueGreen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creator {
    User,
    /// `codeDeployRollback`: the service's automatic rollback.
    Rollback,
    /// Anything else the service sends (kept for completeness; behaves like User).
    Other,
}

/// Where an event takes its appspec and scripts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    New,
    LastSuccessfulOrIgnore,
    MostRecentOrIgnore,
}

/// The table of docs/behaviour/hooks.md#revision-selection.
pub fn selector(event: &str, kind: DeploymentType, creator: Creator) -> Selector {
    use Event::*;
    let bg_rollback = kind == DeploymentType::BlueGreen && creator == Creator::Rollback;
    match Event::from_name(event) {
        Some(BeforeBlockTraffic | AfterBlockTraffic) if bg_rollback => Selector::MostRecentOrIgnore,
        Some(BeforeBlockTraffic | AfterBlockTraffic | ApplicationStop) => {
            Selector::LastSuccessfulOrIgnore
        }
        Some(BeforeAllowTraffic | AfterAllowTraffic) if bg_rollback => {
            Selector::LastSuccessfulOrIgnore
        }
        _ => Selector::New,
    }
}

/// What the executor knows about the deployment directories when an event starts.
#[derive(Debug, Clone, Copy)]
pub struct RevisionFacts<'a, P: ?Sized> {
    pub current: &'a P,
    /// Whether `<current>/deployment-archive` exists (DownloadBundle has run).
    pub current_archive_exists: bool,
    pub last_successful: Option<&'a P>,
    pub most_recent: Option<&'a P>,
}

/// Which deployment directory's revision runs `event`; `None` means the event is a noop
/// (nothing recorded to fall back to). Generic over the path type so it stays pure.
pub fn revision_for<'a, P: ?Sized>(
    event: &str,
    kind: DeploymentType,
    creator: Creator,
    facts: RevisionFacts<'a, P>,
) -> Option<&'a P> {
    // Only when the current revision has not been downloaded yet does an event fall back to a
    // recorded one; once it has, every event uses it (docs/behaviour/hooks.md#revision-selection).
    if facts.current_archive_exists {
        return Some(facts.current);
    }
    match selector(event, kind, creator) {
        Selector::New => Some(facts.current),
        Selector::LastSuccessfulOrIgnore => facts.last_successful,
        Selector::MostRecentOrIgnore => facts.most_recent,
    }
}

/// Problems with a local `--events` list (docs/behaviour/local-cli.md#local-event-order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventListError {
    #[error("The only events that can be specified before DownloadBundle are BeforeBlockTraffic,AfterBlockTraffic,ApplicationStop. Please fix the order of your specified events: {0}")]
    BeforeDownload(String),
    #[error("The only events that can be specified before Install are BeforeBlockTraffic,AfterBlockTraffic,ApplicationStop,DownloadBundle,BeforeInstall. Please fix the order of your specified events: {0}")]
    BeforeInstall(String),
    #[error("event name {0:?} in --events is not a PascalCase lifecycle event name (for example ApplicationStart or MyCustomEvent)")]
    BadName(String),
}

/// Events that may not precede DownloadBundle in `--events`; all but the last (Install) may
/// not precede Install either.
const NOT_BEFORE_DOWNLOAD: [&str; 6] = names([
    Event::AfterInstall,
    Event::ApplicationStart,
    Event::BeforeAllowTraffic,
    Event::AfterAllowTraffic,
    Event::ValidateService,
    Event::Install,
]);

/// Checks and completes a local event list (docs/behaviour/local-cli.md#local-argument-checks,
/// docs/behaviour/local-cli.md#local-deployment): `None` means every canonical event.
/// DownloadBundle and Install are added when missing and kept in that order.
pub fn local_events(given: Option<&[String]>, raw: &str) -> Result<Vec<String>, EventListError> {
    let Some(given) = given else {
        return Ok(CANONICAL_EVENTS.iter().map(|s| s.to_string()).collect());
    };
    if let Some(bad) = given.iter().find(|e| !is_pascal_case(e)) {
        return Err(EventListError::BadName(bad.clone()));
    }
    let pos = |name: &str| given.iter().position(|e| e == name);
    if let Some(d) = pos(DOWNLOAD_BUNDLE) {
        if given[..d]
            .iter()
            .any(|e| NOT_BEFORE_DOWNLOAD.contains(&e.as_str()))
        {
            return Err(EventListError::BeforeDownload(raw.to_string()));
        }
    }
    if let Some(i) = pos(INSTALL) {
        if given[..i]
            .iter()
            .any(|e| NOT_BEFORE_DOWNLOAD[..5].contains(&e.as_str()))
        {
            return Err(EventListError::BeforeInstall(raw.to_string()));
        }
    }
    let mut events: Vec<String> = given.to_vec();
    if !events.iter().any(|e| e == INSTALL) {
        events.insert(0, INSTALL.to_string());
    }
    if !events.iter().any(|e| e == DOWNLOAD_BUNDLE) {
        events.insert(0, DOWNLOAD_BUNDLE.to_string());
    }
    let d = events.iter().position(|e| e == DOWNLOAD_BUNDLE);
    let i = events.iter().position(|e| e == INSTALL);
    if let (Some(d), Some(i)) = (d, i) {
        if i < d {
            events.swap(i, d);
        }
    }
    Ok(events)
}

/// `AllPossibleLifecycleEvents` of a local spec: canonical order first, then custom ones.
pub fn all_possible_events(given: &[String]) -> Vec<String> {
    let mut all: Vec<String> = CANONICAL_EVENTS.iter().map(|s| s.to_string()).collect();
    for e in given {
        if !all.contains(e) {
            all.push(e.clone());
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentType::*;
    use Selector::*;

    #[test]
    fn one_list_one_spelling() {
        for e in Event::ALL {
            assert_eq!(Event::from_name(e.name()), Some(e));
            assert!(is_pascal_case(e.name()), "{e}");
        }
        let hooks: Vec<Event> = Event::ALL
            .into_iter()
            .filter(|e| !e.is_built_in())
            .collect();
        assert_eq!(hooks, HOOK_EVENTS);
        assert_eq!(Event::from_name("afterInstall"), None);
        assert!(is_reserved("Install") && is_reserved("DownloadBundle"));
        assert!(!is_reserved("AfterInstall") && !is_reserved("MyEvent"));
        assert!(is_pascal_case("RunMigrations2") && !is_pascal_case("RunDBMigrations"));
    }

    #[test]
    fn selector_table() {
        let rows: &[(&str, DeploymentType, Creator, Selector)] = &[
            (
                "BeforeBlockTraffic",
                InPlace,
                Creator::User,
                LastSuccessfulOrIgnore,
            ),
            (
                "AfterBlockTraffic",
                InPlace,
                Creator::Rollback,
                LastSuccessfulOrIgnore,
            ),
            (
                "BeforeBlockTraffic",
                BlueGreen,
                Creator::User,
                LastSuccessfulOrIgnore,
            ),
            (
                "BeforeBlockTraffic",
                BlueGreen,
                Creator::Rollback,
                MostRecentOrIgnore,
            ),
            (
                "AfterBlockTraffic",
                BlueGreen,
                Creator::Rollback,
                MostRecentOrIgnore,
            ),
            (
                "ApplicationStop",
                InPlace,
                Creator::User,
                LastSuccessfulOrIgnore,
            ),
            (
                "ApplicationStop",
                BlueGreen,
                Creator::Rollback,
                LastSuccessfulOrIgnore,
            ),
            ("BeforeInstall", BlueGreen, Creator::Rollback, New),
            ("AfterInstall", InPlace, Creator::User, New),
            ("ApplicationStart", InPlace, Creator::User, New),
            ("ValidateService", InPlace, Creator::Rollback, New),
            ("BeforeAllowTraffic", InPlace, Creator::User, New),
            ("AfterAllowTraffic", InPlace, Creator::Rollback, New),
            ("BeforeAllowTraffic", BlueGreen, Creator::User, New),
            (
                "BeforeAllowTraffic",
                BlueGreen,
                Creator::Rollback,
                LastSuccessfulOrIgnore,
            ),
            (
                "AfterAllowTraffic",
                BlueGreen,
                Creator::Rollback,
                LastSuccessfulOrIgnore,
            ),
            ("MyCustomEvent", BlueGreen, Creator::Rollback, New),
        ];
        for (event, kind, creator, want) in rows {
            assert_eq!(
                selector(event, *kind, *creator),
                *want,
                "{event} {kind:?} {creator:?}"
            );
        }
    }

    #[test]
    fn revision_resolution_table() {
        let cur = "cur";
        let last = "last";
        let recent = "recent";
        let f = |archive: bool, l: Option<&'static str>, m: Option<&'static str>| RevisionFacts {
            current: cur,
            current_archive_exists: archive,
            last_successful: l,
            most_recent: m,
        };
        // First deployment: nothing recorded, ApplicationStop is a noop.
        assert_eq!(
            revision_for(
                "ApplicationStop",
                InPlace,
                Creator::User,
                f(false, None, None)
            ),
            None
        );
        // A later one: ApplicationStop runs the last successful revision.
        assert_eq!(
            revision_for(
                "ApplicationStop",
                InPlace,
                Creator::User,
                f(false, Some(last), Some(recent))
            ),
            Some(last)
        );
        // Once the new bundle is downloaded, even ApplicationStop reads it.
        assert_eq!(
            revision_for(
                "ApplicationStop",
                InPlace,
                Creator::User,
                f(true, Some(last), None)
            ),
            Some(cur)
        );
        assert_eq!(
            revision_for(
                "BeforeBlockTraffic",
                BlueGreen,
                Creator::Rollback,
                f(false, Some(last), Some(recent))
            ),
            Some(recent)
        );
        assert_eq!(
            revision_for(
                "BeforeAllowTraffic",
                BlueGreen,
                Creator::Rollback,
                f(false, Some(last), Some(recent))
            ),
            Some(last)
        );
        assert_eq!(
            revision_for(
                "BeforeInstall",
                InPlace,
                Creator::User,
                f(false, None, None)
            ),
            Some(cur)
        );
    }

    fn v(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn local_event_lists() {
        assert_eq!(local_events(None, "").unwrap().len(), 11);
        assert_eq!(
            local_events(Some(&v("ApplicationStart,CustomEvent")), "").unwrap(),
            v("DownloadBundle,Install,ApplicationStart,CustomEvent")
        );
        assert_eq!(
            local_events(Some(&v("BeforeInstall,ApplicationStart")), "").unwrap(),
            v("DownloadBundle,Install,BeforeInstall,ApplicationStart")
        );
        assert_eq!(
            local_events(Some(&v("DownloadBundle,ApplicationStart")), "").unwrap(),
            v("DownloadBundle,Install,ApplicationStart")
        );
        assert_eq!(
            local_events(Some(&v("BeforeInstall,Install")), "").unwrap(),
            v("DownloadBundle,BeforeInstall,Install")
        );
        assert!(matches!(
            local_events(Some(&v("ApplicationStart,DownloadBundle")), "x"),
            Err(EventListError::BeforeDownload(_))
        ));
        assert!(matches!(
            local_events(Some(&v("ValidateService,Install")), "x"),
            Err(EventListError::BeforeInstall(_))
        ));
        assert!(matches!(
            local_events(Some(&v("applicationStart")), "x"),
            Err(EventListError::BadName(_))
        ));
    }

    #[test]
    fn pascal_case() {
        assert!(is_pascal_case("DownloadBundle"));
        assert!(is_pascal_case("AfterAllowTestTraffic"));
        assert!(is_pascal_case("Step2Go"));
        for bad in [
            "DOWNLOADBUNDLE",
            "downloadbundle",
            "downloadBundle",
            "downloadbUndle",
            "",
            "Ab-c",
        ] {
            assert!(!is_pascal_case(bad), "{bad}");
        }
    }

    #[test]
    fn all_possible_keeps_canonical_order_first() {
        let all = all_possible_events(&v("Stop,ApplicationStart,HealthCheck"));
        assert_eq!(&all[..11], CANONICAL_EVENTS.map(String::from).as_slice());
        assert_eq!(&all[11..], &v("Stop,HealthCheck")[..]);
    }
}
