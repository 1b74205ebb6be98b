output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the guard alarms."
  value = concat(
    [
      aws_cloudwatch_metric_alarm.error_rate.alarm_name,
      aws_cloudwatch_metric_alarm.latency.alarm_name,
      aws_cloudwatch_metric_alarm.throttle_rate.alarm_name,
      aws_cloudwatch_metric_alarm.no_healthy_tasks.alarm_name,
    ],
    [for alarm in aws_cloudwatch_metric_alarm.model_invocation_errors : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.variant_error_rate : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.variant_latency : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.variant_model_errors : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.splitgate_throttle_rate : alarm.alarm_name],
  )
}

output "dashboard_name" {
  description = "CloudWatch dashboard name."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
