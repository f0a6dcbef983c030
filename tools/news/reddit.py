"""Recent posts of subreddits, read-only through praw (application-only OAuth), as plain entries.

Contract:
- ``RedditCredentials(client_id, client_secret, user_agent)``: a "script" or "web" app's id and secret
  (https://www.reddit.com/prefs/apps). ``make_reddit(credentials, session=None)`` builds a read-only
  ``praw.Reddit``; ``session`` (a ``requests.Session``) lets tests replay recorded responses, no network.
- ``subreddit_posts(reddit, name, limit)`` returns the newest ``limit`` posts as ``RawEntry`` (title, self-text
  as summary, permalink, ``reddit:<id>`` as guid, created time as published) or raises ``RedditError`` with a
  one-line reason that never contains the secret.

Deliberate decisions:
- praw's update check and async warning are off: no call other than the listing and its token.
- Stickied posts (moderators' pinned threads) are skipped: they are the same every day and not news.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import praw
import prawcore
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tools.news.feeds import RawEntry

TIMEOUT_SECONDS = 10.0


class RedditError(Exception):
    """A subreddit could not be read; the message is one line without credentials."""


class RedditCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    user_agent: str = Field(min_length=7)


def make_reddit(credentials: RedditCredentials, *, session: Any = None) -> praw.Reddit:
    kwargs: dict[str, Any] = {"timeout": TIMEOUT_SECONDS}
    if session is not None:
        kwargs["session"] = session
    return praw.Reddit(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret.get_secret_value(),
        user_agent=credentials.user_agent,
        check_for_updates=False,
        check_for_async=False,
        requestor_kwargs=kwargs,
    )


def subreddit_posts(reddit: praw.Reddit, name: str, limit: int = 50) -> list[RawEntry]:
    """The newest ``limit`` non-stickied posts of r/``name``."""
    try:
        posts = list(reddit.subreddit(name).new(limit=limit))
    except prawcore.exceptions.ResponseException as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise RedditError(f"Reddit answered HTTP {status} for r/{name}") from None
    except prawcore.exceptions.OAuthException:
        raise RedditError("Reddit refused the credentials (check TRADEAGENT_REDDIT_CLIENT_ID and _SECRET)") from None
    except prawcore.exceptions.PrawcoreException as exc:
        raise RedditError(f"Reddit could not be reached for r/{name} ({type(exc).__name__})") from None
    except praw.exceptions.PRAWException as exc:
        raise RedditError(f"r/{name}: {type(exc).__name__}") from None
    out = []
    for post in posts:
        if getattr(post, "stickied", False):
            continue
        created = getattr(post, "created_utc", None)
        try:
            published = datetime.fromtimestamp(float(created), tz=UTC).replace(tzinfo=None) if created else None
        except (TypeError, ValueError, OverflowError, OSError):
            published = None
        out.append(RawEntry(
            title=str(getattr(post, "title", "") or ""), summary=str(getattr(post, "selftext", "") or ""),
            link=f"https://www.reddit.com{getattr(post, 'permalink', '')}", guid=f"reddit:{post.id}",
            published=published,
        ))  # fmt: skip
    return out
