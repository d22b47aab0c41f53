//! Re-admission of a session whose spec changed after it was admitted (`metadata.generation`
//! past `status.observedGeneration`; admission lets only `spec.timeout` change): the chain runs
//! again as an update, and its answer moves the expiry (`vdi_crd::change`) or is refused with
//! the plugin's reason, the session keeping the lifetime it had.

use jiff::Timestamp;
use vdi_crd::VDISessionStatus;

use super::Pass;
use crate::admission::Review;
use crate::error::Result;

impl Pass<'_> {
    /// Runs the admission chain over the changed spec and writes what it settled, with a
    /// Normal `Extended` or a Warning `ExtendDenied` event.
    pub(super) async fn readmit(&mut self, status: &mut VDISessionStatus) -> Result<()> {
        let generation = self.session.metadata.generation;
        match self.review(false).await? {
            Review::Allowed {
                admitted,
                decisions,
                ..
            } => {
                let timeout = admitted.timeout_seconds;
                let at = status.readmit(timeout, decisions, generation, Timestamp::now());
                self.write_status(status).await?;
                let note = at.map_or_else(
                    || "the session no longer expires".to_owned(),
                    |t| {
                        format!(
                            "expires at {t} ({} after admission)",
                            vdi_crd::format_duration(timeout)
                        )
                    },
                );
                self.ctx
                    .event(self.session, false, "Extended", "Readmit", note)
                    .await;
            }
            Review::Denied {
                message, decisions, ..
            } => {
                status.refuse_readmission(decisions, generation);
                self.write_status(status).await?;
                let expiry = status.expires_at.as_deref().unwrap_or("never");
                let note = format!("{message}; the session still expires at {expiry}");
                self.ctx
                    .event(self.session, true, "ExtendDenied", "Readmit", note)
                    .await;
            }
        }
        Ok(())
    }
}
