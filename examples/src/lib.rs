//! Runnable templates for oai users; see the `[[example]]` targets.
