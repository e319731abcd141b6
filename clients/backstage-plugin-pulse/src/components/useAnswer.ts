/** One question's answer as React state: loading, the answer, or the failure, with a retry. */

import { useApi } from '@backstage/core-plugin-api';
import { useCallback, useEffect, useState } from 'react';
import { type Answer, PulseError, pulseApiRef, type QuestionParams } from '../api.js';

export type AnswerState =
  | { status: 'loading' }
  | { status: 'ready'; answer: Answer }
  | { status: 'failed'; error: PulseError };

export function asPulseError(error: unknown): PulseError {
  return error instanceof PulseError ? error : new PulseError('failed', String(error));
}

/** Asks `load` again whenever `key` changes or `retry` is called; a stale answer is dropped. */
export function useLoad<T>(key: string, load: () => Promise<T>) {
  const [attempt, setAttempt] = useState(0);
  const [state, setState] = useState<{ status: 'loading' } | { status: 'ready'; value: T } | { status: 'failed'; error: PulseError }>({ status: 'loading' });
  useEffect(() => {
    let current = true;
    setState({ status: 'loading' });
    load().then(
      value => current && setState({ status: 'ready', value }),
      error => current && setState({ status: 'failed', error: asPulseError(error) }),
    );
    return () => {
      current = false;
    };
    // `load` is rebuilt on every render; `key` says when what it asks changed.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, attempt]);
  const retry = useCallback(() => setAttempt(n => n + 1), []);
  return { state, retry };
}

export function useAnswer(question: string, params: QuestionParams) {
  const api = useApi(pulseApiRef);
  const { state, retry } = useLoad(`${question}?${JSON.stringify(params)}`, () => api.answer(question, params));
  const answer: AnswerState = state.status === 'ready' ? { status: 'ready', answer: state.value } : state;
  return { state: answer, retry };
}
