/** The server's counters and gauges, rendered in Prometheus' text exposition format (version 0.0.4). */
export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface FinishedGeneration {
  promptTokens: number;
  completionTokens: number;
  seconds: number;
  tokensPerSecond: number;
  achievedSparsity: number;
  finishReason: FinishReason;
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly generations = new Map<FinishReason, number>();
  private generatedTokens = 0;
  private promptTokens = 0;
  private generationSeconds = 0;
  private lastTokensPerSecond = 0;
  private lastAchievedSparsity = 0;

  constructor(private readonly queue: { length: number; running: boolean }) {}

  /** `route` is a known path or "other", so that unknown URLs do not grow the label set. */
  request(route: string, status: number): void {
    const key = `route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  generation(g: FinishedGeneration): void {
    this.generations.set(g.finishReason, (this.generations.get(g.finishReason) ?? 0) + 1);
    this.generatedTokens += g.completionTokens;
    this.promptTokens += g.promptTokens;
    this.generationSeconds += g.seconds;
    if (g.completionTokens > 1) this.lastTokensPerSecond = g.tokensPerSecond;
    this.lastAchievedSparsity = g.achievedSparsity;
  }

  render(): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels ? `{${labels}}` : ''} ${value}`);
    };
    metric(
      'wina_requests_total',
      'counter',
      'HTTP requests answered, by route and status code (499: the client went away; a stream an error event ' +
        "ended counts as that error's status, e.g. 503 when cut by a shutdown).",
      [...this.requests],
    );
    metric(
      'wina_generations_total',
      'counter',
      'Generations finished, by finish reason (cancelled: the client went away).',
      (['stop', 'length', 'cancelled'] as const).map((r) => [
        `finish_reason="${r}"`,
        this.generations.get(r) ?? 0,
      ]),
    );
    metric('wina_generated_tokens_total', 'counter', 'Tokens generated.', [['', this.generatedTokens]]);
    metric('wina_prompt_tokens_total', 'counter', 'Prompt tokens processed.', [['', this.promptTokens]]);
    metric('wina_generation_seconds_total', 'counter', 'Time spent generating (prefill and decode).', [
      ['', this.generationSeconds],
    ]);
    metric('wina_tokens_per_second', 'gauge', 'Decode tokens/s of the last generation of 2+ tokens.', [
      ['', this.lastTokensPerSecond],
    ]);
    metric(
      'wina_achieved_sparsity',
      'gauge',
      'Achieved sparsity of the last generation (share of weight reads skipped).',
      [['', this.lastAchievedSparsity]],
    );
    metric('wina_queue_length', 'gauge', 'Requests waiting for the model.', [['', this.queue.length]]);
    metric('wina_generations_running', 'gauge', 'Generations running (0 or 1).', [
      ['', this.queue.running ? 1 : 0],
    ]);
    return `${lines.join('\n')}\n`;
  }
}
