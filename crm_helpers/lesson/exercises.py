"""Exercises in the notebooks: a task, a cell to fill in, `check()`, `hint()` and `solution()`.

Each exercise is defined once (`crm_helpers.lesson.exercise_bank`): its task, the starter code
the notebook holds (with the placeholder `____`), the reference solution as code, its hints and
a judge. The judge runs the learner's answer and the reference solution against the same TiDB
from the same starting state and says what differs, so no expected answer is written down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_helpers.errors import CrmError
from crm_helpers.language import Text


class Unanswered:
    """The placeholder `____` that an exercise cell holds until the learner replaces it."""

    def __repr__(self) -> str:
        return "____"


#: What the learner replaces with their answer.
____ = Unanswered()
PLACEHOLDER = "____"


class AnswerRaised(Exception):
    """The learner's code raised: the judge stops, and the check reports the error."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class UnknownExercises(CrmError, KeyError):
    """A notebook asked for exercises that do not exist."""


CORRECT = Text(en="Correct", ja="正解")
NOT_ANSWERED = Text(en="{q}: not answered yet. Replace ____ with your code, then run the cell "
                       "again.",
                    ja="{q}: まだ解答されていません。____ をあなたのコードに置き換えて、"
                       "セルをもう一度実行してください。")
WRONG = Text(en="{q}: not yet right. {why}", ja="{q}: まだ正しくありません。{why}")
RAISED = Text(en="your code raised {error}: {message}",
              ja="コードが {error} を送出しました: {message}")
NO_MORE_HINTS = Text(en="(no more hints: q{n}.solution() shows the answer)",
                     ja="(ヒントは以上です: q{n}.solution() で解答を表示できます)")
HINT = Text(en="Hint {i} of {n}: {hint}", ja="ヒント {i}/{n}: {hint}")
SOLUTION = Text(en="Solution to q{n}:", ja="q{n} の解答:")
TASK = Text(en="q{n}. {task}", ja="q{n}. {task}")
SUMMARY = Text(en="{done} of {total} exercises of this notebook done.{rest}",
               ja="このノートブックの演習 {total} 問中 {done} 問が完了しました。{rest}")
STILL_TO_DO = Text(en=" Still to do: {names}.", ja=" 残り: {names}。")


def unanswered(answer: object) -> bool:
    """Whether `answer` is the placeholder, or a function whose body still uses it."""
    if isinstance(answer, Unanswered):
        return True
    code = getattr(answer, "__code__", None)
    return code is not None and PLACEHOLDER in code.co_names


def learner(answer: Callable[..., Any]) -> Callable[..., Any]:
    """`answer` wrapped so that an error it raises stops the judge as `AnswerRaised`."""
    if not callable(answer):
        raise AnswerRaised(TypeError(f"{type(answer).__name__} is not a function: "
                                     "define the function the cell starts"))

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return answer(*args, **kwargs)
        except Exception as error:
            raise AnswerRaised(error) from error
    return run


#: A judge: (answer, reference answer, bench) -> what is wrong, or None when it is right.
Judge = Callable[[Any, Any, Any], "Text | str | None"]


@dataclass(frozen=True)
class Exercise:
    """One exercise, defined once for every notebook edition."""

    answer_name: str
    task: Text
    starter: str
    solution: str
    hints: tuple[Text, ...]
    judge: Judge

    def reference(self, namespace: Mapping[str, Any]) -> Any:
        """The reference answer: the solution's code run in `namespace`."""
        names = dict(namespace)
        exec(self.solution, names)  # the very code solution() shows
        return names[self.answer_name]


@dataclass
class Question:
    """An exercise bound to this notebook's TiDB: what the learner calls `q1`, `q2`, ..."""

    number: int
    exercise: Exercise
    bench: Any
    namespace: Mapping[str, Any]
    done: bool = False
    hints_shown: int = 0

    def check(self, answer: object = ____) -> None:
        """Print "Correct", what differs from the reference, or that it is not answered yet."""
        name = f"q{self.number}"
        if unanswered(answer):
            print(NOT_ANSWERED.format(q=name))
            return
        try:
            wrong = self.exercise.judge(answer, self.exercise.reference(self.namespace), self.bench)
        except AnswerRaised as raised:
            wrong = RAISED.format(error=type(raised.error).__name__, message=raised.error)
        finally:
            self.bench.reset()
        for secret in getattr(self.bench, "secrets", ()):
            wrong = wrong and wrong.replace(secret, "***")  # a password the learner pasted in SQL
        if wrong is None:
            self.done = True
            print(f"{name}: {CORRECT}")
        else:
            print(WRONG.format(q=name, why=wrong))

    def hint(self) -> None:
        """Print the next hint (each call shows one more)."""
        hints = self.exercise.hints
        if self.hints_shown >= len(hints):
            print(NO_MORE_HINTS.format(n=self.number))
            return
        self.hints_shown += 1
        print(HINT.format(i=self.hints_shown, n=len(hints), hint=hints[self.hints_shown - 1]))

    def solution(self) -> None:
        """Print the reference solution: the code the check compares your answer with."""
        print(SOLUTION.format(n=self.number))
        print(self.exercise.solution.strip())

    def reset(self) -> None:
        """Put the tables back in the state this exercise starts from."""
        self.bench.reset()

    def task(self) -> None:
        """Print the task."""
        print(TASK.format(n=self.number, task=self.exercise.task))


@dataclass
class ExerciseSet:
    """The exercises of one notebook, unpacked as `q1, q2, ... = exercises(...)`."""

    questions: list[Question] = field(default_factory=list)

    def __iter__(self) -> Iterator[Question]:
        return iter(self.questions)

    def summary(self) -> None:
        """Print how many of this notebook's exercises are done, and which are left."""
        left = [f"q{q.number}" for q in self.questions if not q.done]
        rest = STILL_TO_DO.format(names=", ".join(left)) if left else ""
        print(SUMMARY.format(done=len(self.questions) - len(left), total=len(self.questions),
                             rest=rest))


def exercises(notebook: str, **resources: Any) -> ExerciseSet:
    """The exercises of `notebook` ("create_database", "crm_application", ...), bound to
    the engines in `resources`."""
    from crm_helpers.lesson.exercise_bank import NOTEBOOKS

    if notebook not in NOTEBOOKS:
        raise UnknownExercises(f"no exercises for {notebook!r}: use one of "
                               f"{', '.join(map(repr, sorted(NOTEBOOKS)))}")
    make_bench, bank, namespace = NOTEBOOKS[notebook]
    bench = make_bench(**resources)
    names = {**namespace, **getattr(bench, "names", {})}
    return ExerciseSet([Question(number, exercise, bench, names)
                        for number, exercise in enumerate(bank, start=1)])
