"""Retry conditions for Prefect tasks: retry on chosen exception types only."""

from __future__ import annotations

from collections.abc import Callable

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun


def retry_on(*exception_types: type[BaseException]) -> Callable[[Task, TaskRun, State], bool]:
    """A ``retry_condition_fn`` that retries only when the task raised one of these types."""

    def should_retry(task: Task, task_run: TaskRun, state: State) -> bool:
        try:
            state.result()
        except exception_types:
            return True
        except BaseException:
            return False
        return False

    return should_retry
