/** What the page shows when it cannot show insights: not allowed (no retry helps), or
 * unavailable (Pulse down, slow or refusing the backend's token) with a retry. */

import { WarningPanel } from '@backstage/core-components';
import { Button, Typography } from '@material-ui/core';
import type { PulseError } from '../api.js';

export function Failure({ error, retry }: { error: PulseError; retry?: () => void }) {
  if (error.kind === 'not-allowed') {
    return (
      <WarningPanel severity="info" title="You are not allowed to see Pulse insights" defaultExpanded>
        <Typography variant="body2">
          Reading them needs the <code>pulse.insights.read</code> permission; ask your Backstage administrators for it.
        </Typography>
      </WarningPanel>
    );
  }
  const title = error.kind === 'bad-request' ? 'Pulse could not answer this question' : 'Pulse insights are unavailable';
  return (
    <WarningPanel severity="error" title={title} message={error.message} defaultExpanded>
      {retry && (
        <Button variant="outlined" color="primary" onClick={retry}>
          Retry
        </Button>
      )}
    </WarningPanel>
  );
}
