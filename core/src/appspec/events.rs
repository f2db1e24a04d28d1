//! PURE: lifecycle event names as the appspec sees them.
//!
//! The nine script hooks may carry scripts; `DownloadBundle` and `Install` are built into the
//! agent and never run user scripts. Any other name that passes `lifecycle::is_pascal_case`
//! (the one spelling rule, shared with commands and `--events`) is a custom event: allowed in
//! the appspec (a service deployment or a local run may list it), but callers can tell it
//! apart with [`is_lifecycle_hook_event`] or [`Hooks::custom_events`]. The list of events is
//! `lifecycle::Event`.

use super::model::Hooks;
use crate::lifecycle::{is_pascal_case, Event, HOOK_EVENTS};

/// The script hooks of an in-place deployment, in the order a deployment runs them
/// (the names of [`HOOK_EVENTS`]).
pub const LIFECYCLE_HOOK_EVENTS: [&str; 9] = {
    let mut out = [""; 9];
    let mut i = 0;
    while i < 9 {
        out[i] = HOOK_EVENTS[i].name();
        i += 1;
    }
    out
};

/// Steps built into the agent: an appspec may not attach scripts to them.
pub const RESERVED_EVENTS: [&str; 2] = [Event::DownloadBundle.name(), Event::Install.name()];

/// Whether `name` is one of the nine script hooks (exact, case-sensitive): a canonical event
/// that is not built in.
pub fn is_lifecycle_hook_event(name: &str) -> bool {
    Event::from_name(name).is_some_and(|e| !e.is_built_in())
}

pub fn is_reserved_event(name: &str) -> bool {
    crate::lifecycle::is_reserved(name)
}

/// What is wrong with a hook key, or `None` when it is acceptable (canonical or custom).
pub fn event_name_problem(name: &str) -> Option<String> {
    if is_lifecycle_hook_event(name) {
        return None;
    }
    if is_reserved_event(name) {
        return Some(format!(
            "{name} is a step built into the agent and cannot have scripts; \
             use BeforeInstall or AfterInstall instead"
        ));
    }
    let all = LIFECYCLE_HOOK_EVENTS.iter().chain(RESERVED_EVENTS.iter());
    if let Some(known) = all.clone().find(|k| k.eq_ignore_ascii_case(name)) {
        return Some(format!(
            "unknown lifecycle event {name:?}; event names are case-sensitive: did you mean {known}?"
        ));
    }
    if !is_pascal_case(name) {
        return Some(format!(
            "{name:?} is not a lifecycle event name: expected one of {} or a PascalCase custom event",
            LIFECYCLE_HOOK_EVENTS.join(", ")
        ));
    }
    None
}

impl Hooks {
    /// Events in the appspec that are not among the nine canonical hooks (custom events).
    pub fn custom_events(&self) -> impl Iterator<Item = &str> {
        self.events().filter(|e| !is_lifecycle_hook_event(e))
    }

    /// The appspec's events missing from a deployment's `AllPossibleLifecycleEvents`
    /// (docs/behaviour/appspec.md#event-validation step 1, appspec side), in appspec order; empty
    /// when all are known.
    pub fn events_outside<'a>(&'a self, all_possible: &[&str]) -> Vec<&'a str> {
        self.events()
            .filter(|e| !all_possible.contains(e))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_events_are_the_canonical_ones_less_the_built_in_steps() {
        let derived: Vec<&str> = crate::lifecycle::CANONICAL_EVENTS
            .into_iter()
            .filter(|e| !crate::lifecycle::is_reserved(e))
            .collect();
        assert_eq!(derived, LIFECYCLE_HOOK_EVENTS);
        assert!(LIFECYCLE_HOOK_EVENTS
            .iter()
            .all(|e| is_lifecycle_hook_event(e)));
        assert!(RESERVED_EVENTS
            .iter()
            .all(|e| is_reserved_event(e) && !is_lifecycle_hook_event(e)));
    }

    #[test]
    fn custom_and_outside_events() {
        let hooks = Hooks(vec![
            ("AfterInstall".into(), vec![]),
            ("MyEvent".into(), vec![]),
            ("Other".into(), vec![]),
        ]);
        assert_eq!(
            hooks.custom_events().collect::<Vec<_>>(),
            ["MyEvent", "Other"]
        );
        let possible = ["AfterInstall", "MyEvent", "Install"];
        assert_eq!(hooks.events_outside(&possible), ["Other"]);
    }

    #[test]
    fn classifies_names() {
        let cases: &[(&str, bool)] = &[
            ("AfterInstall", true),
            ("ValidateService", true),
            ("MyCustomEvent", true),
            ("RunDbMigrations2", true),
            // One spelling rule with commands and `--events`: "DB" is not a PascalCase word.
            ("RunDBMigrations2", false),
            ("Install", false),
            ("DownloadBundle", false),
            ("afterinstall", false),
            ("After Install", false),
            ("", false),
            ("after_install", false),
        ];
        for (name, ok) in cases {
            assert_eq!(event_name_problem(name).is_none(), *ok, "{name}");
        }
        assert!(event_name_problem("afterInstall")
            .unwrap()
            .contains("did you mean AfterInstall"));
        assert!(event_name_problem("Install")
            .unwrap()
            .contains("built into the agent"));
    }
}
