import type { TimerHandle, VirtualClock } from './clock';
import { AwsError } from './errors';
import type { Recorder } from './recorder';

/**
 * Amazon SQS standard queues, as the dispatcher's SDK commands see them (SQS API reference):
 * - a received message is invisible for the visibility timeout (queue default or the receive's
 *   VisibilityTimeout; 0 s–12 h), then visible again unless deleted; ChangeMessageVisibility resets it;
 * - every receive increments ApproximateReceiveCount and issues a new receipt handle;
 * - DelaySeconds (0–900) hides a new message;
 * - a redrive policy moves a message to the DLQ when a receive would take it past `maxReceiveCount`;
 * - ReceiveMessage returns at most 10 messages; WaitTimeSeconds (0–20) long-polls;
 * - ApproximateNumberOfMessages counts visible messages (NotVisible and Delayed separately).
 * Standard queues are not ordered; this one hands out messages in the order they became visible, which
 * keeps runs reproducible. It never delivers a message twice while it is invisible (real SQS rarely may).
 */
interface QueueOptions {
  name: string;
  visibilityTimeoutSeconds?: number;
  delaySeconds?: number;
  redrive?: { deadLetterQueueName: string; maxReceiveCount: number };
}

interface Message {
  id: string;
  body: string;
  receiveCount: number;
  sentAt: number;
  firstReceiveAt?: number;
  handle?: string;
  timer?: TimerHandle;
  attributes: Record<string, { DataType: string; StringValue?: string }>;
  state: 'delayed' | 'visible' | 'inflight';
}

class Queue {
  visible: Message[] = [];
  head = 0;
  byId = new Map<string, Message>();
  byHandle = new Map<string, Message>();
  waiters: Array<() => void> = [];
  constructor(readonly options: QueueOptions) {}
}

export const queueUrl = (name: string) => `https://sqs.eu-west-1.amazonaws.com/111111111111/${name}`;
const nameOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

export class SqsEmulator {
  private queues = new Map<string, Queue>();
  private seq = 0;
  /** Called when a message is moved to a DLQ by the redrive policy. */
  onMessageMoved?: (queueName: string, messageBody: string, reason: string, messageId: string) => void;
  /** Called for every message sent to a queue (including redrive moves). */
  onSend?: (queueName: string, messageBody: string, attributes: Record<string, { DataType: string; StringValue?: string }>) => void;

  constructor(
    private readonly clock: VirtualClock,
    private readonly recorder: Recorder,
  ) {}

  createQueue(options: QueueOptions): string {
    this.queues.set(options.name, new Queue(options));
    return queueUrl(options.name);
  }

  /** The AWS SDK v3 `client.send(command)` surface, for the commands the pipeline uses. */
  async send(command: { constructor: { name: string }; input: any }): Promise<any> {
    this.recorder.count('sqsRequests');
    const input = command.input;
    switch (command.constructor.name) {
      case 'SendMessageCommand':
        return this.sendMessage(input.QueueUrl, input.MessageBody, input.DelaySeconds, input.MessageAttributes);
      case 'SendMessageBatchCommand': {
        const Successful = (input.Entries as any[]).map((entry) => ({
          Id: entry.Id,
          ...this.sendMessage(input.QueueUrl, entry.MessageBody, entry.DelaySeconds, entry.MessageAttributes),
        }));
        return { Successful, Failed: [] };
      }
      case 'ReceiveMessageCommand':
        return this.receive(input);
      case 'DeleteMessageCommand':
        this.delete(input.QueueUrl, input.ReceiptHandle);
        return {};
      case 'DeleteMessageBatchCommand':
        return this.batch(input.Entries, (entry) => this.delete(input.QueueUrl, entry.ReceiptHandle));
      case 'ChangeMessageVisibilityCommand':
        this.changeVisibility(input.QueueUrl, input.ReceiptHandle, input.VisibilityTimeout);
        return {};
      case 'ChangeMessageVisibilityBatchCommand':
        return this.batch(input.Entries, (entry) => this.changeVisibility(input.QueueUrl, entry.ReceiptHandle, entry.VisibilityTimeout));
      case 'GetQueueAttributesCommand':
        return { Attributes: this.attributes(input.QueueUrl) };
      case 'GetQueueUrlCommand':
        if (!this.queues.has(input.QueueName))
          throw new AwsError('AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist for this wsdl version.', false);
        return { QueueUrl: queueUrl(input.QueueName) };
      default:
        throw new AwsError('InvalidAction', `the SQS twin does not implement ${command.constructor.name}`, false);
    }
  }

  sendMessage(url: string, body: string, delaySeconds?: number, attributes?: Message['attributes']): { MessageId: string } {
    const queue = this.queue(url);
    this.onSend?.(queue.options.name, body, attributes ?? {});
    const message: Message = {
      id: `msg-${++this.seq}`,
      body,
      receiveCount: 0,
      sentAt: this.clock.now(),
      attributes: attributes ?? {},
      state: 'delayed',
    };
    queue.byId.set(message.id, message);
    const delay = delaySeconds ?? queue.options.delaySeconds ?? 0;
    if (delay > 0) message.timer = this.clock.setTimeout(() => this.makeVisible(queue, message), delay * 1000);
    else this.makeVisible(queue, message);
    return { MessageId: message.id };
  }

  counts(url: string): { visible: number; inflight: number; delayed: number; total: number } {
    const queue = this.queue(url);
    let inflight = 0;
    let delayed = 0;
    for (const message of queue.byId.values()) {
      if (message.state === 'inflight') inflight++;
      else if (message.state === 'delayed') delayed++;
    }
    return { visible: queue.byId.size - inflight - delayed, inflight, delayed, total: queue.byId.size };
  }

  /** Every message in a queue as it stands (for the explorer's invariants): id, body, state, attributes, receives. */
  messages(url: string): Array<Readonly<Pick<Message, 'id' | 'body' | 'state' | 'attributes' | 'receiveCount'>>> {
    return [...this.queue(url).byId.values()];
  }

  /** Bodies of every message in a queue (for the report's DLQ accounting and tests). */
  bodies(url: string): string[] {
    return [...this.queue(url).byId.values()].map((m) => m.body);
  }

  private async receive(input: any): Promise<any> {
    const queue = this.queue(input.QueueUrl);
    const max = Math.min(10, Math.max(1, input.MaxNumberOfMessages ?? 1));
    const waitSeconds = Math.min(20, Math.max(0, input.WaitTimeSeconds ?? 0));
    let messages = this.take(queue, max, input.VisibilityTimeout);
    if (messages.length === 0 && waitSeconds > 0) {
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimeout(() => done(), waitSeconds * 1000);
        const done = () => {
          this.clock.clearTimeout(timer);
          queue.waiters = queue.waiters.filter((w) => w !== done);
          resolve();
        };
        queue.waiters.push(done);
      });
      messages = this.take(queue, max, input.VisibilityTimeout);
    }
    if (messages.length === 0) return {};
    return {
      Messages: messages.map((m) => ({
        MessageId: m.id,
        ReceiptHandle: m.handle,
        Body: m.body,
        Attributes: {
          ApproximateReceiveCount: String(m.receiveCount),
          SentTimestamp: String(m.sentAt),
          ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt),
        },
        MessageAttributes: Object.keys(m.attributes).length > 0 ? m.attributes : undefined,
      })),
    };
  }

  private take(queue: Queue, max: number, visibilityTimeout?: number): Message[] {
    const taken: Message[] = [];
    const timeout = visibilityTimeout ?? queue.options.visibilityTimeoutSeconds ?? 30;
    while (taken.length < max && queue.head < queue.visible.length) {
      const message = queue.visible[queue.head++];
      if (message.state !== 'visible' || !queue.byId.has(message.id)) continue;
      const redrive = queue.options.redrive;
      if (redrive && message.receiveCount >= redrive.maxReceiveCount) {
        // SQS moves the message instead of delivering it a (maxReceiveCount+1)-th time.
        queue.byId.delete(message.id);
        const dlqUrl = queueUrl(redrive.deadLetterQueueName);
        this.sendMessage(dlqUrl, message.body, 0, message.attributes);
        this.onMessageMoved?.(redrive.deadLetterQueueName, message.body, 'maxReceiveCount', message.id);
        continue;
      }
      message.receiveCount++;
      message.firstReceiveAt ??= this.clock.now();
      if (message.handle) queue.byHandle.delete(message.handle);
      message.handle = `${message.id}#${message.receiveCount}`;
      queue.byHandle.set(message.handle, message);
      message.state = 'inflight';
      message.timer = this.clock.setTimeout(() => this.makeVisible(queue, message), timeout * 1000);
      taken.push(message);
    }
    if (queue.head > 1024 && queue.head * 2 > queue.visible.length) {
      queue.visible = queue.visible.slice(queue.head);
      queue.head = 0;
    }
    return taken;
  }

  private makeVisible(queue: Queue, message: Message): void {
    if (!queue.byId.has(message.id)) return;
    message.state = 'visible';
    message.timer = undefined;
    queue.visible.push(message);
    const waiter = queue.waiters.shift();
    waiter?.();
  }

  private delete(url: string, handle: string): void {
    const queue = this.queue(url);
    const message = queue.byHandle.get(handle);
    if (!message) throw new AwsError('ReceiptHandleIsInvalid', `The receipt handle "${handle}" is not valid.`, false);
    queue.byHandle.delete(handle);
    queue.byId.delete(message.id);
    if (message.timer) this.clock.clearTimeout(message.timer);
  }

  private changeVisibility(url: string, handle: string, seconds: number): void {
    const queue = this.queue(url);
    const message = queue.byHandle.get(handle);
    if (!message || message.state !== 'inflight') {
      throw new AwsError('MessageNotInflight', `The message referred to by "${handle}" is not in flight.`, false);
    }
    if (message.timer) this.clock.clearTimeout(message.timer);
    message.timer = this.clock.setTimeout(() => this.makeVisible(queue, message), Math.max(0, seconds) * 1000);
  }

  private batch(entries: Array<{ Id: string; [k: string]: any }>, apply: (entry: any) => void) {
    const Successful: Array<{ Id: string }> = [];
    const Failed: Array<{ Id: string; Code: string; Message: string; SenderFault: boolean }> = [];
    for (const entry of entries) {
      try {
        apply(entry);
        Successful.push({ Id: entry.Id });
      } catch (error) {
        Failed.push({ Id: entry.Id, Code: (error as Error).name, Message: (error as Error).message, SenderFault: true });
      }
    }
    return { Successful, Failed };
  }

  private attributes(url: string): Record<string, string> {
    const { visible, inflight, delayed } = this.counts(url);
    return {
      ApproximateNumberOfMessages: String(visible),
      ApproximateNumberOfMessagesNotVisible: String(inflight),
      ApproximateNumberOfMessagesDelayed: String(delayed),
    };
  }

  private queue(url: string): Queue {
    const queue = this.queues.get(nameOf(url));
    if (!queue) throw new AwsError('AWS.SimpleQueueService.NonExistentQueue', `The specified queue does not exist: ${url}`, false);
    return queue;
  }
}
