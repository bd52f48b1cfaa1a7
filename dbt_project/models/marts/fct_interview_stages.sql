with

stages as (
    select * from {{ ref('int_stages_typed') }}
),

processes as (
    select * from {{ ref('fct_interview_processes') }}
),

final as (
    select
        stages.interview_stage_id,
        stages.interview_process_id,
        processes.candidate_id,
        processes.company_name,
        processes.feeder_source,
        stages.stage_name,
        stages.stage_type,
        stages.stage_order,
        stages.outcome,
        stages.overall_rating,
        stages.technical_rating,
        stages.culture_fit_rating,
        stages.communication_rating,
        stages.scheduled_date,
        stages.completed_date,
        stages.days_scheduled_to_completed,
        stages.interviewer_names,
        stages.feedback_notes,
        stages.next_steps,
        stages.stage_name_clean,
        stages.stage_name_normalized,
        stages.is_unmapped_stage_name,
        stages.is_decided,
        stages.is_completed,
        stages.elapsed_days_scheduled_to_completed,
        processes.company_key,
        processes.feeder_key
    from stages
    inner join processes on stages.interview_process_id = processes.interview_process_id
)

select * from final
