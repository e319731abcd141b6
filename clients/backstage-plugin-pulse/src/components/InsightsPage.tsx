/** The insights page: who uses this Backstage and what they use, over a range, by period and
 * per instance. It first asks the backend for the question list: that tells "not allowed" and
 * "unavailable" apart from the start, before any card asks its own question. */

import { Content, ContentHeader, Header, Page, Progress } from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { Grid } from '@material-ui/core';
import { useState } from 'react';
import { type QuestionParams, pulseApiRef } from '../api.js';
import { Controls, type Selection } from './Controls.js';
import { Failure } from './Failure.js';
import { Insights } from './Insights.js';
import { OptOut } from './OptOut.js';
import { useLoad } from './useAnswer.js';

export interface InsightsPageProps {
  /** Draw Backstage's page header (the legacy system; the new one draws its own). */
  header?: boolean;
}

export function InsightsPage({ header = true }: InsightsPageProps) {
  const api = useApi(pulseApiRef);
  const { state, retry } = useLoad('catalogue', () => api.catalogue());
  const [selection, setSelection] = useState<Selection>({ since: '7d', group: 'day', instance: '', team: '' });
  const params: QuestionParams = {
    since: selection.since,
    ...(selection.instance ? { instance: selection.instance } : {}),
    ...(selection.team ? { group: selection.team } : {}),
  };
  let body;
  if (state.status === 'loading') body = <Progress />;
  else if (state.status === 'failed') body = <Failure error={state.error} retry={retry} />;
  else
    body = (
      <>
        <ContentHeader title="Usage">
          <Controls selection={selection} onChange={setSelection} />
        </ContentHeader>
        <Grid container spacing={3} alignItems="stretch">
          <Insights params={params} group={selection.group} />
        </Grid>
      </>
    );
  const content = (
    <Content>
      {body}
      <OptOut />
    </Content>
  );
  if (!header) return content;
  return (
    <Page themeId="tool">
      <Header title="Pulse insights" subtitle="Who uses this Backstage, and what they use" />
      {content}
    </Page>
  );
}
