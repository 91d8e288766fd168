/** OpenAI's response objects and stream chunks for one request, with the `wina` extension field. */
import { randomUUID } from 'node:crypto';
import type { GenerationResult, LiveStats } from './generation.js';
import type { GenerationRequest } from './requests.js';

export interface SparsitySetting {
  method: string;
  sparsity: number;
}

export class ResponseShape {
  private readonly chat: boolean;
  private readonly head: { id: string; object: string; created: number; model: string };
  private readonly setting: SparsitySetting;

  constructor(
    private readonly request: GenerationRequest,
    modelName: string,
    serverDefault: SparsitySetting,
  ) {
    this.chat = request.endpoint === 'chat';
    this.head = {
      id: `${this.chat ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`,
      object: this.chat ? 'chat.completion' : 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: modelName,
    };
    const choice = request.sparsity;
    this.setting = !choice
      ? serverDefault
      : { method: choice.method, sparsity: 'sparsity' in choice ? choice.sparsity : 0 };
  }

  /** The non-streamed response. */
  whole(result: GenerationResult) {
    const choice = this.chat
      ? { index: 0, message: { role: 'assistant', content: result.text }, logprobs: null }
      : { index: 0, text: result.text, logprobs: null };
    return {
      ...this.head,
      choices: [{ ...choice, finish_reason: result.finishReason }],
      usage: this.usage(result),
      wina: this.extension(result),
    };
  }

  /** Chat streams open with the assistant's role, as OpenAI's do. */
  roleChunk() {
    return this.chunk([
      { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
    ]);
  }

  textChunk(text: string, stats: LiveStats) {
    const choice = this.chat ? { delta: { content: text } } : { text };
    return {
      ...this.chunk([{ index: 0, ...choice, logprobs: null, finish_reason: null }]),
      wina: this.extension(stats),
    };
  }

  finalChunk(result: GenerationResult) {
    const choice = this.chat ? { delta: {} } : { text: '' };
    return {
      ...this.chunk([{ index: 0, ...choice, logprobs: null, finish_reason: result.finishReason }]),
      wina: this.extension(result),
    };
  }

  /** With stream_options.include_usage: one last chunk with no choices. */
  usageChunk(result: GenerationResult) {
    return { ...this.chunk([]), usage: this.usage(result) };
  }

  private chunk(choices: object[]) {
    return { ...this.head, object: this.chat ? 'chat.completion.chunk' : 'text_completion', choices };
  }

  private usage(result: GenerationResult) {
    const prompt = this.request.promptIds.length;
    return { prompt_tokens: prompt, completion_tokens: result.tokens, total_tokens: prompt + result.tokens };
  }

  private extension(stats: LiveStats) {
    return {
      ...this.setting,
      tokens: stats.tokens,
      tokens_per_second: stats.tokensPerSecond,
      achieved_sparsity: stats.achievedSparsity,
    };
  }
}
