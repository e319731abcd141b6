/** The page's cards, each one saved question. */

import { Grid, Typography } from '@material-ui/core';
import type { Answer, Grouping, QuestionParams } from '../api.js';
import { AdoptionTable } from './Adoption.js';
import { AnswerTable, type Column, shownCell } from './AnswerTable.js';
import { ActiveUsersChart, NewVsReturningChart } from './charts.js';
import { QuestionCard } from './QuestionCard.js';

const ACTIVE: Record<string, string> = {
  hour: 'Hourly active users',
  day: 'Daily active users (DAU)',
  week: 'Weekly active users (WAU)',
  month: 'Monthly active users (MAU)',
};

const n = (name: string, label: string): Column => ({ name, label, numeric: true });
const s = (name: string, label: string): Column => ({ name, label });

const TABLES: { question: string; title: string; empty: string; columns: Column[] }[] = [
  { question: 'top_plugins', title: 'Top plugins', empty: 'No plugin was used in this range.', columns: [s('plugin_id', 'Plugin'), n('page_views', 'Page views'), n('users', 'Users'), n('events', 'Events')] },
  { question: 'top_templates', title: 'Software templates', empty: 'No template was run in this range.', columns: [s('template', 'Template'), n('runs', 'Runs'), n('users', 'Users'), n('time_saved', 'Time saved')] },
  { question: 'top_techdocs', title: 'TechDocs', empty: 'No TechDocs page was read in this range.', columns: [s('entity', 'Entity'), n('views', 'Views'), n('users', 'Users'), n('not_found', 'Not found')] },
  { question: 'top_entities', title: 'Catalog entities', empty: 'No catalog entity was viewed in this range.', columns: [s('entity', 'Entity'), s('kind', 'Kind'), n('views', 'Views'), n('users', 'Users')] },
  { question: 'top_searches', title: 'Searches', empty: 'Nobody searched in this range.', columns: [s('term', 'Term'), n('searches', 'Searches'), n('users', 'Users'), n('mean_results', 'Mean results')] },
  { question: 'searches_no_results', title: 'Searches without results', empty: 'Every search found something in this range.', columns: [s('term', 'Term'), n('searches', 'Searches'), n('users', 'Users')] },
];

function Figures({ answer }: { answer: Answer }) {
  const row = answer.rows[0] ?? {};
  const figures = [
    ['users', 'Active users'],
    ['sessions', 'Sessions'],
    ['page_views', 'Page views'],
    ['events', 'Events'],
  ];
  return (
    <Grid container spacing={2}>
      {figures.map(([name, label]) => (
        <Grid item xs={6} md={3} key={name}>
          <Typography variant="h4" data-figure={name}>
            {shownCell(answer, { [name!]: 0, ...row }, name!, true)}
          </Typography>
          <Typography color="textSecondary">{label}</Typography>
        </Grid>
      ))}
    </Grid>
  );
}

export function Insights({ params, group }: { params: QuestionParams; group: Exclude<Grouping, 'total'> }) {
  const grouped = { ...params, group_by: group };
  const top = { ...params, limit: 10 };
  return (
    <>
      <Grid item xs={12}>
        <QuestionCard question="active_users" title="In this range" params={{ ...params, group_by: 'total' }} empty="No events in this range.">
          {answer => <Figures answer={answer} />}
        </QuestionCard>
      </Grid>
      <Grid item xs={12} md={6}>
        <QuestionCard question="active_users" title={ACTIVE[group]!} params={grouped} empty="No active users in this range.">
          {answer => <ActiveUsersChart answer={answer} />}
        </QuestionCard>
      </Grid>
      <Grid item xs={12} md={6}>
        <QuestionCard question="new_vs_returning" title="New and returning users" params={grouped} empty="No users in this range.">
          {answer => <NewVsReturningChart answer={answer} />}
        </QuestionCard>
      </Grid>
      <Grid item xs={12} md={6}>
        <QuestionCard
          question="teams"
          title="Adoption by team"
          subheader="Active members / members at the end of the range"
          params={{ ...params, group_by: 'total', limit: 20 }}
          empty="No group is known: sync the catalog's people (catalog sync --from-backstage)."
        >
          {answer => <AdoptionTable answer={answer} />}
        </QuestionCard>
      </Grid>
      {TABLES.map(t => (
        <Grid item xs={12} md={6} key={t.question}>
          <QuestionCard question={t.question} title={t.title} params={top} empty={t.empty}>
            {answer => <AnswerTable answer={answer} columns={t.columns} />}
          </QuestionCard>
        </Grid>
      ))}
    </>
  );
}
