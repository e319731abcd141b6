/** A card answering one saved question: loading, the answer (drawn by `children`), nothing in
 * the range, or the failure with a retry; and the answer's CSV to download. */

import { InfoCard, Progress } from '@backstage/core-components';
import { alertApiRef, useApi } from '@backstage/core-plugin-api';
import { IconButton, Tooltip, Typography } from '@material-ui/core';
import { GetApp as GetAppIcon } from '@material-ui/icons';
import type { ReactNode } from 'react';
import { type Answer, pulseApiRef, type QuestionParams } from '../api.js';
import { Failure } from './Failure.js';
import { asPulseError, useAnswer } from './useAnswer.js';

export interface QuestionCardProps {
  question: string;
  title: string;
  subheader?: string;
  params: QuestionParams;
  empty: string;
  children: (answer: Answer) => ReactNode;
}

export function QuestionCard({ question, title, subheader, params, empty, children }: QuestionCardProps) {
  const { state, retry } = useAnswer(question, params);
  let body: ReactNode;
  if (state.status === 'loading') body = <Progress />;
  else if (state.status === 'failed') body = <Failure error={state.error} retry={retry} />;
  else if (state.answer.rows.length === 0) body = <Typography color="textSecondary">{empty}</Typography>;
  else body = children(state.answer);
  return (
    <InfoCard title={title} subheader={subheader} action={<CsvButton question={question} params={params} />}>
      <div data-question={question} data-state={state.status === 'ready' && state.answer.rows.length === 0 ? 'empty' : state.status}>
        {body}
      </div>
    </InfoCard>
  );
}

function CsvButton({ question, params }: { question: string; params: QuestionParams }) {
  const api = useApi(pulseApiRef);
  const alerts = useApi(alertApiRef);
  const download = async () => {
    try {
      const url = URL.createObjectURL(await api.csv(question, params));
      const link = document.createElement('a');
      link.href = url;
      link.download = `${question}.csv`;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 0);
    } catch (error) {
      alerts.post({ message: `CSV download failed: ${asPulseError(error).message}`, severity: 'error' });
    }
  };
  return (
    <Tooltip title="Download CSV">
      <IconButton aria-label={`Download ${question} as CSV`} onClick={download}>
        <GetAppIcon />
      </IconButton>
    </Tooltip>
  );
}
