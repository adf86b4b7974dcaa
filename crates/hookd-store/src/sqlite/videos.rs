//! Video jobs. A status change is conditional on the status it was decided from, and
//! publishes its event in the same transaction.

use async_trait::async_trait;
use hookd_core::{AccountId, VideoId, VideoStatus};

use super::SqliteStore;
use crate::rows::{self, fetch_limit, into_page};
use crate::schema::VIDEO_COLUMNS;
use crate::{Page, PageRequest, StoreError, StoreResult, UnixMillis, Video, VideoStore, VideoUpdate};

#[async_trait]
impl VideoStore for SqliteStore {
    async fn create_video(&self, video: &Video) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO videos (video_id, account_id, video_type, status, request, title, callback_url, callback_id,
                                 output_format, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(video.video_id.as_str())
        .bind(video.account_id.as_str())
        .bind(&video.video_type)
        .bind(video.status.as_str())
        .bind(&video.request)
        .bind(video.title.as_deref())
        .bind(video.callback_url.as_deref())
        .bind(video.callback_id.as_deref())
        .bind(&video.output_format)
        .bind(video.created_at)
        .bind(video.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_video(&self, account_id: &AccountId, video_id: &VideoId) -> StoreResult<Video> {
        let sql = format!("SELECT {VIDEO_COLUMNS} FROM videos WHERE account_id = ? AND video_id = ?");
        let row = sqlx::query(&sql)
            .bind(account_id.as_str())
            .bind(video_id.as_str())
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(rows::video(&row)?.1)
    }

    async fn find_video(&self, video_id: &VideoId) -> StoreResult<Video> {
        let sql = format!("SELECT {VIDEO_COLUMNS} FROM videos WHERE video_id = ?");
        let row = sqlx::query(&sql).bind(video_id.as_str()).fetch_optional(&self.writer).await?;
        Ok(rows::video(&row.ok_or(StoreError::NotFound)?)?.1)
    }

    async fn list_videos(&self, status: Option<VideoStatus>, page: PageRequest) -> StoreResult<Page<Video>> {
        let sql = format!(
            "SELECT {VIDEO_COLUMNS} FROM videos WHERE (?1 IS NULL OR status = ?1) AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
        );
        let rows = sqlx::query(&sql)
            .bind(status.map(VideoStatus::as_str))
            .bind(page.before.unwrap_or(i64::MAX))
            .bind(fetch_limit(page))
            .fetch_all(&self.reader)
            .await?;
        let rows = rows.iter().map(rows::video).collect::<StoreResult<Vec<_>>>()?;
        Ok(into_page(rows, page))
    }

    async fn update_video(
        &self,
        video_id: &VideoId,
        update: &VideoUpdate,
        now: UnixMillis,
    ) -> StoreResult<Option<usize>> {
        let mut tx = self.writer.begin().await?;
        let result = &update.result;
        let changed = sqlx::query(
            "UPDATE videos SET status = ?, video_url = ?, thumbnail_url = ?, gif_url = ?, captioned_video_url = ?,
                 subtitle_url = ?, duration = ?, folder_id = ?, output_language = ?, video_page_url = ?,
                 failure_code = ?, failure_message = ?, completed_at = ?, updated_at = ?
             WHERE video_id = ? AND status = ?",
        )
        .bind(update.status.as_str())
        .bind(result.video_url.as_deref())
        .bind(result.thumbnail_url.as_deref())
        .bind(result.gif_url.as_deref())
        .bind(result.captioned_video_url.as_deref())
        .bind(result.subtitle_url.as_deref())
        .bind(result.duration)
        .bind(result.folder_id.as_deref())
        .bind(result.output_language.as_deref())
        .bind(result.video_page_url.as_deref())
        .bind(result.failure_code.as_deref())
        .bind(result.failure_message.as_deref())
        .bind(update.completed_at)
        .bind(now)
        .bind(video_id.as_str())
        .bind(update.expected.as_str())
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            return Ok(None);
        }
        let deliveries = match &update.event {
            Some(event) => {
                super::publish::publish_in(&mut tx, std::slice::from_ref(event)).await?.iter().sum()
            }
            None => 0,
        };
        tx.commit().await?;
        Ok(Some(deliveries))
    }
}
