import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderChart } from './chart';
import { computeReport, type Report } from './report';
import type { Scenario } from './scenario';
import { stageWithOverrides, World, type Design, type DesignName, type Progress } from './world';

/** Loads a design by name (sluice is loaded lazily: it needs the synthesized stage and the dispatcher). */
async function loadDesign(name: DesignName, stage: string): Promise<Design> {
  switch (name) {
    case 'naive':
      return (await import('./designs/naive')).naive;
    case 'semaphore':
      return (await import('./designs/semaphore')).semaphore;
    case 'sluice':
      return (await import('./designs/sluice')).sluiceDesign(stage);
  }
}

interface SimulationResult {
  report: Report & { wallSeconds: number };
  events: World['recorder']['events'];
}

/** Runs one design on one scenario; writes events.jsonl, report.json and chart.svg when `outDir` is set. */
export async function simulate(options: {
  stage: string;
  scenario: Scenario;
  design: DesignName;
  outDir?: string;
  onProgress?: (progress: Progress) => void;
}): Promise<SimulationResult> {
  const stage = stageWithOverrides(options.stage, options.scenario);
  // Each run has its own DynamoDB (World): the designs' tables never meet a previous run's items.
  const world = new World(options.scenario, stage);
  const design = await loadDesign(options.design, options.stage);
  const run = await world.run(design, options.onProgress);
  const report = { ...computeReport(run.events), wallSeconds: Math.round(run.wallMs / 100) / 10 };
  if (options.outDir) {
    mkdirSync(options.outDir, { recursive: true });
    writeFileSync(join(options.outDir, 'events.jsonl'), run.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    writeFileSync(join(options.outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
    writeFileSync(join(options.outDir, 'chart.svg'), renderChart(run.events, report));
  }
  return { report, events: run.events };
}
