//! Studies.

use uuid::Uuid;

use super::model::{Recipients, Study, StudyCode};
use super::{Db, DbError, new_id, now, with_pool};

const INSERT_STUDY: &str = "INSERT INTO studies (id, code, title, recipients, created_at) \
     VALUES ($1, $2, $3, $4, $5) \
     RETURNING id, code, title, recipients, created_at";

const STUDY_BY_ID: &str =
    "SELECT id, code, title, recipients, created_at FROM studies WHERE id = $1";

const STUDY_BY_CODE: &str =
    "SELECT id, code, title, recipients, created_at FROM studies WHERE code = $1";

const LIST_STUDIES: &str =
    "SELECT id, code, title, recipients, created_at FROM studies ORDER BY code";

const SET_STUDY_RECIPIENTS: &str = "UPDATE studies SET recipients = $2 WHERE id = $1 \
     RETURNING id, code, title, recipients, created_at";

impl Db {
    /// Creates a study. [`DbError::Conflict`] (`study code`) if the code is taken.
    #[tracing::instrument(skip_all)]
    pub async fn create_study(
        &self,
        code: &StudyCode,
        title: &str,
        recipients: &Recipients,
    ) -> Result<Study, DbError> {
        let id = new_id();
        let created_at = now();
        let study = with_pool!(self, pool => {
            sqlx::query_as::<_, Study>(INSERT_STUDY)
                .bind(id)
                .bind(code.as_str())
                .bind(title)
                .bind(recipients.to_lines())
                .bind(created_at)
                .fetch_one(pool)
                .await?
        });
        Ok(study)
    }

    /// The study with this id, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn study_by_id(&self, study_id: Uuid) -> Result<Study, DbError> {
        let study = with_pool!(self, pool => {
            sqlx::query_as::<_, Study>(STUDY_BY_ID).bind(study_id).fetch_one(pool).await?
        });
        Ok(study)
    }

    /// The study with this code, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn study_by_code(&self, code: &StudyCode) -> Result<Study, DbError> {
        let study = with_pool!(self, pool => {
            sqlx::query_as::<_, Study>(STUDY_BY_CODE).bind(code.as_str()).fetch_one(pool).await?
        });
        Ok(study)
    }

    /// Every study, by code.
    #[tracing::instrument(skip_all)]
    pub async fn list_studies(&self) -> Result<Vec<Study>, DbError> {
        let studies = with_pool!(self, pool => {
            sqlx::query_as::<_, Study>(LIST_STUDIES).fetch_all(pool).await?
        });
        Ok(studies)
    }

    /// Replaces the recipients new bundles of the study are encrypted to (key rotation) and
    /// returns the updated study. Bundles already stored keep their own recipients fingerprint.
    /// [`DbError::NotFound`] if there is no such study.
    #[tracing::instrument(skip_all)]
    pub async fn set_study_recipients(
        &self,
        study_id: Uuid,
        recipients: &Recipients,
    ) -> Result<Study, DbError> {
        let study = with_pool!(self, pool => {
            sqlx::query_as::<_, Study>(SET_STUDY_RECIPIENTS)
                .bind(study_id)
                .bind(recipients.to_lines())
                .fetch_one(pool)
                .await?
        });
        Ok(study)
    }
}
